/**
 * bench:qemu's wire clock: the kernel's time for each framed frame as its TCP segment crosses the loopback
 * interface, from a packet ring on `lo` (the packet-ring addon, root). The latency round measures a pair from
 * the secondary's frame on the wire to its release on the wire: neither the bench's write call nor its own
 * wake-up to read the release is counted, only what the implementation did in between.
 *
 * A frame is known by the TCP stream it travels in (the implementation's listening port, either direction)
 * and by its own inner TCP sequence number, which the latency round makes unique per pair.
 */
import type { FrameSink } from '../proxy/ports/framed.js';
import { RingPort, ringCaptureAvailable } from '../proxy/ports/ring.js';

const ETHERNET = 14;
const FRAMING = 4;
/** Inner frames are Ethernet + IPv4 (20 bytes, no options) + TCP: the sequence number is 4 bytes into TCP. */
const INNER_SEQ = ETHERNET + 20 + 4;

/** Why the wire clock cannot run here, or null when it can. */
export function wireClockUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (a packet socket on lo needs CAP_NET_RAW)';
  if (!ringCaptureAvailable()) return 'the packet-ring addon did not load';
  return null;
}

/** One direction of one TCP connection: the bytes of a frame not yet whole, and the next sequence number. */
interface Stream {
  pending: Buffer;
  /** When the first of the pending bytes crossed. */
  pendingSince: number;
  nextSeq: number;
}

export class WireClock implements FrameSink {
  /** `port * 2^32 + inner seq` (both fit in 53 bits) -> kernel time in µs (CLOCK_REALTIME). */
  private readonly seen = new Map<number, number>();
  /** The same key -> when the frame's first bytes (its length) crossed, where that was earlier. */
  private readonly begun = new Map<number, number>();
  private readonly streams = new Map<number, Stream>();
  private readonly ring: RingPort;
  /** Segments that did not follow on from the last one seen in their stream: its framing is lost from there. */
  gaps = 0;

  constructor(private readonly ports: ReadonlySet<number>) {
    this.ring = new RingPort({ name: 'wire-clock', iface: 'lo', sink: this, bufferFrames: 65536, timestamps: true });
  }

  /**
   * When the frame with inner sequence `seq` had crossed lo, whole, in the connection to or from `port`;
   * undefined if it was not seen. A frame written in two segments (QEMU writes the length, then the frame)
   * counts from the second.
   */
  timeUs(port: number, seq: number): number | undefined {
    return this.seen.get(port * 2 ** 32 + seq);
  }

  /** When the first bytes of that frame crossed lo: earlier than timeUs() only for a frame written in parts. */
  firstBytesUs(port: number, seq: number): number | undefined {
    const id = port * 2 ** 32 + seq;
    return this.begun.get(id) ?? this.seen.get(id);
  }

  close(): void {
    this.ring.close();
  }

  onFrame(frame: Buffer): void {
    if (frame.length < ETHERNET + 20 + 20 || frame.readUInt16BE(12) !== 0x0800) return;
    const ip = ETHERNET;
    if (frame[ip + 9] !== 6) return;
    const tcp = ip + (frame[ip] & 0x0f) * 4;
    const src = frame.readUInt16BE(tcp);
    const dst = frame.readUInt16BE(tcp + 2);
    const port = this.ports.has(dst) ? dst : this.ports.has(src) ? src : -1;
    if (port < 0) return;
    const payload = frame.subarray(tcp + (frame[tcp + 12] >> 4) * 4, ip + frame.readUInt16BE(ip + 2));
    if (payload.length === 0) return; // an ACK
    const seq = frame.readUInt32BE(tcp + 4);
    const key = src * 65536 + dst;
    let stream = this.streams.get(key);
    if (stream === undefined) {
      // Watching starts between frames (the sessions are idle then), so the first segment starts one.
      stream = { pending: Buffer.alloc(0), pendingSince: 0, nextSeq: seq };
      this.streams.set(key, stream);
    }
    if (seq !== stream.nextSeq) {
      this.gaps++;
      stream.pending = Buffer.alloc(0);
    }
    stream.nextSeq = (seq + payload.length) >>> 0;
    const time = this.ring.frameTimeUs;
    let firstBytes = stream.pending.length === 0 ? time : stream.pendingSince;
    let bytes = stream.pending.length === 0 ? payload : Buffer.concat([stream.pending, payload]);
    while (bytes.length >= FRAMING && bytes.length >= FRAMING + bytes.readUInt32BE(0)) {
      const length = bytes.readUInt32BE(0);
      if (length >= INNER_SEQ + 4) {
        const id = port * 2 ** 32 + bytes.readUInt32BE(FRAMING + INNER_SEQ);
        if (!this.seen.has(id)) {
          this.seen.set(id, time);
          if (firstBytes !== time) this.begun.set(id, firstBytes);
        }
      }
      bytes = bytes.subarray(FRAMING + length);
      firstBytes = time;
    }
    stream.pending = Buffer.from(bytes);
    stream.pendingSince = firstBytes;
  }

  onReject(): void {}
}
