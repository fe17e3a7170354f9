import type { FrameSink } from '../port.js';

/**
 * QEMU's chardev packet framing, the format filter-mirror, filter-redirector and colo-compare speak:
 *
 *   u32 BE length | [u32 BE vnet_hdr_len, only when vnet_hdr_support is on] | length bytes
 *
 * The vnet header is the first vnet_hdr_len bytes of the `length` bytes; the Ethernet frame follows it.
 * Both ends must agree on vnet_hdr_support: the field is not self-describing.
 *
 * Resynchronisation rule (QEMU aborts on the first case and kills the input on the second):
 * - length 0: the frame is its header alone (4 bytes, or 8 with the vnet field). It is rejected with
 *   'zero-length', counted, and decoding continues with the next header: the stream stays in step.
 * - vnet_hdr_len > length: the frame is still delimited by `length`, so its bytes are skipped, it is
 *   rejected with 'vnet-length', and decoding continues.
 * - length > 69632: nothing after it can be trusted to be a header, so the frame is rejected with
 *   'oversized' and push() returns 'close': the caller closes only that connection, and a new one
 *   (the listener accepts a reconnect; a connecting side reconnects) starts with a fresh decoder.
 * - the connection ends inside a frame: end() rejects the partial frame with 'truncated'.
 */

/** QEMU's NET_BUFSIZE: the largest `length` it accepts (inclusive). */
export const MAX_FRAME_LENGTH = 69632;

export type DecodeStatus = 'ok' | 'close';

export function frameHeaderLength(vnetHdr: boolean): 4 | 8 {
  return vnetHdr ? 8 : 4;
}

/**
 * A streaming decoder for one connection. Frames lying wholly inside a chunk are handed out as views of
 * that chunk (no copy: Node never reuses a socket's read buffer); a frame spanning chunks is assembled
 * once into its own buffer.
 */
export class FrameDecoder {
  private readonly headerLength: 4 | 8;
  /** Header bytes split across chunks. */
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  /** The frame being assembled across chunks, or null. */
  private body: Buffer | null = null;
  private bodyFill = 0;
  private bodyStart = 0;
  /** Bytes still to discard of a frame rejected for 'vnet-length'. */
  private skip = 0;
  private skipLength = 0;
  private closed = false;

  constructor(
    private readonly vnetHdr: boolean,
    private readonly sink: FrameSink,
    private readonly maxLength = MAX_FRAME_LENGTH,
  ) {
    this.headerLength = frameHeaderLength(vnetHdr);
  }

  /** Bytes of an unfinished frame (header included) held between chunks. */
  get pendingBytes(): number {
    if (this.body !== null) return this.headerLength + this.bodyFill;
    return this.headerFill;
  }

  /** Decodes every whole frame in `chunk`. After 'close' it ignores input until reset(). */
  push(chunk: Buffer): DecodeStatus {
    if (this.closed) return 'close';
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.body !== null) {
        pos = this.continueBody(chunk, pos);
        continue;
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - pos);
        this.skip -= take;
        pos += take;
        if (this.skip === 0) this.sink.onReject('vnet-length', this.skipLength);
        continue;
      }
      let length: number;
      let vnetLength = 0;
      if (this.headerFill === 0 && n - pos >= this.headerLength) {
        // Fast path: the whole header is in this chunk.
        length = chunk.readUInt32BE(pos);
        if (this.vnetHdr) vnetLength = chunk.readUInt32BE(pos + 4);
        pos += this.headerLength;
      } else {
        const take = Math.min(this.headerLength - this.headerFill, n - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < this.headerLength) return 'ok';
        this.headerFill = 0;
        length = this.header.readUInt32BE(0);
        if (this.vnetHdr) vnetLength = this.header.readUInt32BE(4);
      }
      if (length === 0) {
        this.sink.onReject('zero-length', 0);
        continue;
      }
      if (length > this.maxLength) {
        this.closed = true;
        this.sink.onReject('oversized', length);
        return 'close';
      }
      if (vnetLength > length) {
        this.skip = length;
        this.skipLength = length;
        continue;
      }
      if (n - pos >= length) {
        const end = pos + length;
        this.sink.onFrame(chunk.subarray(pos, end), vnetLength);
        pos = end;
      } else {
        // Small frames come from Node's shared pool (cheap); large ones get their own memory.
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
        this.bodyStart = vnetLength;
      }
    }
    return 'ok';
  }

  private continueBody(chunk: Buffer, pos: number): number {
    const body = this.body as Buffer;
    const take = Math.min(body.length - this.bodyFill, chunk.length - pos);
    chunk.copy(body, this.bodyFill, pos, pos + take);
    this.bodyFill += take;
    if (this.bodyFill === body.length) {
      this.body = null;
      this.sink.onFrame(body, this.bodyStart);
    }
    return pos + take;
  }

  /** The connection ended: a partial frame is rejected as 'truncated'. The decoder is then fresh. */
  end(): void {
    const partial = this.closed ? 0 : this.pendingBytes + (this.skip > 0 ? this.skipLength - this.skip : 0);
    const inFrame = !this.closed && (this.headerFill > 0 || this.body !== null || this.skip > 0);
    this.reset();
    if (inFrame) this.sink.onReject('truncated', partial);
  }

  /** Forget everything: the next byte is the start of a header. */
  reset(): void {
    this.headerFill = 0;
    this.body = null;
    this.bodyFill = 0;
    this.skip = 0;
    this.closed = false;
  }
}

/** One framed message in its own buffer (control messages, tests). */
export function encodeFrame(frame: Buffer, vnetHdr: boolean, vnetLength = 0): Buffer {
  const headerLength = frameHeaderLength(vnetHdr);
  const out = Buffer.allocUnsafe(headerLength + frame.length);
  out.writeUInt32BE(frame.length, 0);
  if (vnetHdr) out.writeUInt32BE(vnetLength, 4);
  frame.copy(out, headerLength);
  return out;
}

const SLAB_SIZE = 256 * 1024;

/**
 * Accumulates framed output for one destination so that every frame released in one event-loop turn goes
 * out in a single write (one syscall instead of one per frame). Frames are copied once, into a slab;
 * a region handed out by take() is never written again, so the socket may keep it as long as it likes.
 */
export class FrameBatch {
  private slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** Start of the not-yet-taken region and the fill position. */
  private begin = 0;
  private fill = 0;
  private count = 0;
  private readonly headerLength: 4 | 8;

  constructor(private readonly vnetHdr: boolean) {
    this.headerLength = frameHeaderLength(vnetHdr);
  }

  /** Frames appended since the last take(). */
  get frames(): number {
    return this.count;
  }

  get bytes(): number {
    return this.fill - this.begin;
  }

  append(frame: Buffer, vnetLength: number): void {
    const need = this.headerLength + frame.length;
    if (this.fill + need > this.slab.length) this.grow(need);
    const slab = this.slab;
    slab.writeUInt32BE(frame.length, this.fill);
    if (this.vnetHdr) slab.writeUInt32BE(vnetLength, this.fill + 4);
    frame.copy(slab, this.fill + this.headerLength);
    this.fill += need;
    this.count++;
  }

  /** The batch so far as one buffer, or null when empty. */
  take(): Buffer | null {
    if (this.fill === this.begin) return null;
    const out = this.slab.subarray(this.begin, this.fill);
    this.begin = this.fill;
    this.count = 0;
    return out;
  }

  /**
   * Everything taken so far has been handed to the kernel and is referenced by nobody: start filling the
   * slab from its beginning again. Reusing one hot slab instead of a fresh one per 256 KiB avoids page
   * faults and garbage; the caller must be sure (a socket with writableLength 0 holds no buffer).
   */
  recycle(): void {
    if (this.begin === this.fill) {
      this.begin = 0;
      this.fill = 0;
    }
  }

  private grow(need: number): void {
    // The pending region moves to a new slab; the old slab stays alive only while taken views need it.
    const pending = this.fill - this.begin;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, 2 * (pending + need)));
    this.slab.copy(next, 0, this.begin, this.fill);
    this.slab = next;
    this.begin = 0;
    this.fill = pending;
  }
}
