import { closeSync, createWriteStream, openSync, writeSync, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

/** Where a capture writer's bytes go. `chunk` is only valid during the call: a sink that keeps it copies. */
export interface ByteSink {
  write(chunk: Buffer): void;
}

/** Collects everything in memory (tests, small files). */
export class BufferSink implements ByteSink {
  private readonly parts: Buffer[] = [];
  write(chunk: Buffer): void {
    this.parts.push(Buffer.from(chunk));
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Synchronous writes to a file: for offline tools (replay, bench, examples), never the live data path. */
export class FileSink implements ByteSink {
  private fd: number | null;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }
  write(chunk: Buffer): void {
    if (this.fd === null) throw new Error(`${this.path}: write after close`);
    let done = 0;
    while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done);
  }
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Opens (truncates) a file to stream to; rejects with the file's error (e.g. ENOENT for a missing directory). */
export async function openWriteStream(path: string): Promise<WriteStream> {
  const stream = createWriteStream(path, { flags: 'w' });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => {
      stream.off('error', reject);
      resolve();
    });
    stream.once('error', reject);
  });
  return stream;
}

/**
 * Streams to a Writable (e.g. openWriteStream's) without blocking the event loop: the live proxy's
 * sink. The stream buffers what the disk has not taken yet; `pendingBytes` lets a caller watch that.
 */
export class StreamSink implements ByteSink {
  constructor(private readonly stream: Writable) {}
  write(chunk: Buffer): void {
    this.stream.write(Buffer.from(chunk));
  }
  get pendingBytes(): number {
    return this.stream.writableLength;
  }
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}

/**
 * Stages small writes in one reusable buffer so a writer issues one sink write per ~64 KiB rather than
 * two per record (record header, frame).
 */
export class StagedOutput {
  /** The buffer the last reserve() returned an offset into. */
  current: Buffer;
  private readonly stage: Buffer;
  private used = 0;
  private pendingLarge: Buffer | null = null;

  constructor(
    private readonly sink: ByteSink,
    size = 65536,
  ) {
    this.stage = Buffer.allocUnsafe(size);
    this.current = this.stage;
  }

  /** Reserves `n` zeroed bytes to fill at the returned offset in `current`; they are written in order. */
  reserve(n: number): number {
    if (this.pendingLarge !== null || this.used + n > this.stage.length) this.flush();
    if (n > this.stage.length) {
      // Larger than the stage: the caller fills a buffer of its own, written out at the next flush().
      this.pendingLarge = Buffer.alloc(n);
      this.current = this.pendingLarge;
      return 0;
    }
    const offset = this.used;
    this.stage.fill(0, offset, offset + n);
    this.used += n;
    this.current = this.stage;
    return offset;
  }

  flush(): void {
    if (this.used > 0) this.sink.write(this.stage.subarray(0, this.used));
    this.used = 0;
    if (this.pendingLarge !== null) {
      const large = this.pendingLarge;
      this.pendingLarge = null;
      this.sink.write(large);
    }
  }
}
