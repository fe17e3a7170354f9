import { closeSync, openSync, readSync } from 'node:fs';

/**
 * 256 KiB: every chunk is fresh memory (see ByteInput), and with 1 MiB chunks the kernel time spent faulting
 * in new pages during the read was several times higher (measured on the replay bench: 100-600 ms of system
 * time per 170 MB read, against 40-100 ms with 256 KiB); 128 KiB saved no more system time and cost more
 * user time.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 18;

/**
 * The bytes of a capture: a whole Buffer, or a file read in chunks. Each chunk is a NEW Buffer, never
 * refilled, so a record's subarray stays valid after the reader moves on: the comparison engine holds
 * frames by reference until it releases them.
 */
export class ByteInput {
  /** The current chunk; file offset `base` is buf[0]. */
  buf: Buffer;
  base = 0;
  /** Valid bytes in buf. */
  private end: number;
  private eof: boolean;

  private constructor(
    readonly name: string,
    private fd: number | null,
    buf: Buffer,
    private readonly chunkSize: number,
  ) {
    this.buf = buf;
    this.end = fd === null ? buf.length : 0;
    this.eof = fd === null;
  }

  static fromBuffer(buf: Buffer, name = '<buffer>'): ByteInput {
    return new ByteInput(name, null, buf, 0);
  }

  static fromFile(path: string, chunkSize = DEFAULT_CHUNK_SIZE): ByteInput {
    return new ByteInput(path, openSync(path, 'r'), Buffer.alloc(0), chunkSize);
  }

  /** File offset one past the last byte loaded so far. */
  get loadedEnd(): number {
    return this.base + this.end;
  }

  /**
   * Makes file bytes [offset, offset + n) addressable as buf[offset - base ...]. Returns false when the file
   * ends first; `available(offset)` then says how many bytes were there. `offset` never goes below the
   * offset of an earlier call (readers only move forward).
   */
  ensure(offset: number, n: number): boolean {
    if (offset + n <= this.base + this.end) return true;
    if (this.eof || this.fd === null) return false;
    const keepFrom = Math.min(offset - this.base, this.end);
    const kept = this.end - keepFrom;
    const next = Buffer.allocUnsafe(Math.max(this.chunkSize, n));
    this.buf.copy(next, 0, keepFrom, this.end);
    let filled = kept;
    while (filled < next.length) {
      const read = readSync(this.fd, next, filled, next.length - filled, null);
      if (read === 0) {
        this.eof = true;
        break;
      }
      filled += read;
    }
    this.buf = next;
    this.base += keepFrom;
    this.end = filled;
    return offset + n <= this.base + this.end;
  }

  /** Bytes present from `offset` to the end of what could be loaded (meaningful after ensure() failed). */
  available(offset: number): number {
    return Math.max(0, this.base + this.end - offset);
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
      this.eof = true;
    }
  }
}
