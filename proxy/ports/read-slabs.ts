/**
 * Read buffers for framed input sockets, recycled once every frame decoded from them is done with.
 *
 * Why: Node's default socket read hands each read a fresh 64 KiB buffer. On this project's machines that
 * cost 2.7 ns per byte read (page faults on new memory, then garbage collection), about 4 us for each
 * 1448-byte TCP frame and twice that per released frame (both inputs are read): a third of the drop-in's
 * CPU. Reading into memory that is already mapped costs a quarter of that.
 *
 * How: a socket reads (Node's `onread` option) into consecutive regions of a 256 KiB slab, and the frames
 * decoded from a region are views of it, so nothing is copied. A slab whose space is used up is retired; a
 * retired slab whose frames have all been reported done() goes back to the free list and is read into
 * again. A frame nobody reports done() keeps its slab out of the free list for ever (it is then garbage
 * collected like any buffer), so forgetting done() costs memory reuse, never correctness. Reporting done()
 * for a frame that is still referenced is the one way to get this wrong: done() promises that nobody reads
 * the frame's bytes again (the comparison engine gives that promise for a frame once it has released or
 * dropped it, see compare/engine.ts push()).
 */
import type { FrameSink, FramingRejectReason } from '../port.js';

/** Slab size: four reads. A held frame pins its slab; a smaller slab pins less memory per held frame. */
export const SLAB_BYTES = 256 * 1024;
/**
 * The most one read may fill: libuv's own read size. Larger reads would make each input's chunks (and the
 * lead one input takes over the other, see proxy/fairness.ts) coarser.
 */
export const READ_BYTES = 64 * 1024;
/** Free slabs kept for reuse; beyond this they are left to the garbage collector. */
const MAX_FREE_SLABS = 16;

class Slab {
  /** Frames decoded from this slab and not yet reported done. */
  live = 0;
  /** No more reads go into this slab: it may be reused once `live` is 0. */
  retired = false;
  constructor(readonly memory: Buffer) {}
}

export interface ReadSlabCounters {
  /** Slabs allocated (each one is new memory). */
  allocated: number;
  /** Times a slab was taken from the free list instead. */
  reused: number;
}

/** The slabs of one process (or one loop): every input socket reads into them, the loop reports done(). */
export class ReadSlabs {
  readonly counters: ReadSlabCounters = { allocated: 0, reused: 0 };
  private readonly free: Slab[] = [];
  /** Weak: a slab that never comes back (a frame never reported done) is collected with its last frame. */
  private readonly byMemory = new WeakMap<ArrayBufferLike, Slab>();

  /** A slab to read into: a free one if there is any. */
  acquire(): Slab {
    const reused = this.free.pop();
    if (reused !== undefined) {
      reused.retired = false;
      this.counters.reused++;
      return reused;
    }
    const slab = new Slab(Buffer.allocUnsafeSlow(SLAB_BYTES));
    this.byMemory.set(slab.memory.buffer, slab);
    this.counters.allocated++;
    return slab;
  }

  /** No more reads go into `slab`. */
  retire(slab: Slab): void {
    slab.retired = true;
    if (slab.live === 0) this.recycle(slab);
  }

  /**
   * Nobody will read `frame`'s bytes again: its slab may be reused once all its frames are done. Frames
   * that do not come from a slab (assembled across reads, or from tests) are ignored.
   */
  done(frame: Buffer): void {
    const slab = this.byMemory.get(frame.buffer);
    if (slab === undefined || slab.live === 0) return;
    if (--slab.live === 0 && slab.retired) this.recycle(slab);
  }

  /** Slabs ready for reuse. */
  get freeSlabs(): number {
    return this.free.length;
  }

  private recycle(slab: Slab): void {
    if (this.free.length < MAX_FREE_SLABS) this.free.push(slab);
  }
}

/**
 * One connection's position in the slabs: where its next read goes, and which frames came from which slab.
 * Used as a socket's `onread` buffer source: next() before each read, chunk() after it.
 */
export class SlabReader {
  private slab: Slab | null = null;
  private fill = 0;

  constructor(private readonly slabs: ReadSlabs) {}

  /** The region the next read fills: the rest of the current slab, at most READ_BYTES. */
  next(): Buffer {
    let slab = this.slab;
    if (slab === null || SLAB_BYTES - this.fill < READ_BYTES) {
      if (slab !== null) this.slabs.retire(slab);
      slab = this.slab = this.slabs.acquire();
      this.fill = 0;
    }
    return slab.memory.subarray(this.fill, this.fill + READ_BYTES);
  }

  /** `n` bytes were read into `region` (what next() returned): the chunk to decode. */
  chunk(region: Buffer, n: number): Buffer {
    const slab = this.slab;
    if (slab !== null && region.buffer === slab.memory.buffer) this.fill = region.byteOffset + n;
    return region.subarray(0, n);
  }

  /** `frame` was decoded from the last chunk: if it is a view of the slab, the slab holds one more frame. */
  track(frame: Buffer): void {
    const slab = this.slab;
    if (slab !== null && frame.buffer === slab.memory.buffer) slab.live++;
  }

  /** The connection is gone: its slab takes no more reads. */
  close(): void {
    if (this.slab !== null) this.slabs.retire(this.slab);
    this.slab = null;
  }
}

/** Between the decoder and the caller's sink: counts each frame against the slab it is a view of. */
export class SlabTrackingSink implements FrameSink {
  reader: SlabReader | null = null;
  constructor(private readonly sink: FrameSink) {}

  onFrame(frame: Buffer, start: number): void {
    this.reader?.track(frame);
    this.sink.onFrame(frame, start);
  }

  onReject(reason: FramingRejectReason, length: number): void {
    this.sink.onReject(reason, length);
  }
}
