import type { FramePort } from './port.js';

/**
 * The output gate between the comparison engine and the client. From the moment a checkpoint starts it holds
 * every released primary frame; at LOADED it flushes them in order before any newer frame can pass. The
 * primary is suspended during a checkpoint, so what it holds is bounded by what was in flight; the bound
 * below is a tripwire: passing it is counted and reported, and frames are still held, never dropped.
 */
export interface GateCounters {
  passed: number;
  held: number;
  flushed: number;
  sendFailures: number;
  /** Times the held frames went past maxHeldFrames. */
  overBound: number;
  /** The most frames held at once. */
  highWater: number;
}

export class OutputGate {
  readonly counters: GateCounters = { passed: 0, held: 0, flushed: 0, sendFailures: 0, overBound: 0, highWater: 0 };
  private frames: Buffer[] = [];
  private starts: number[] = [];
  private bytes = 0;
  private closed = false;
  /** The first this many held frames belong to the epoch seal() closed. */
  private sealed = 0;

  constructor(
    private readonly out: FramePort,
    private readonly maxHeldFrames: number,
    private readonly onOverBound: (held: number) => void = () => undefined,
  ) {}

  get holding(): boolean {
    return this.closed;
  }

  get heldFrames(): number {
    return this.frames.length;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /** Closes the gate: from now on frames are held until release(). */
  hold(): void {
    this.closed = true;
  }

  pass(frame: Buffer, start: number): void {
    if (!this.closed) {
      this.send(frame, start);
      this.counters.passed++;
      return;
    }
    this.frames.push(frame);
    this.starts.push(start);
    this.bytes += frame.length - start;
    this.counters.held++;
    const held = this.frames.length;
    if (held > this.counters.highWater) this.counters.highWater = held;
    if (held === this.maxHeldFrames + 1) {
      this.counters.overBound++;
      this.onOverBound(held);
    }
  }

  /** A frame no hold applies to (a pass-through rule's flow): sent now, even while the gate is closed. */
  passUnheld(frame: Buffer, start: number): void {
    this.send(frame, start);
    this.counters.passed++;
  }

  /** Marks every frame held now as one epoch's (periodic mode): releaseSealed() sends just those. */
  seal(): void {
    this.sealed = this.frames.length;
  }

  /** Sends the sealed frames in order; the gate stays closed and newer frames stay held. */
  releaseSealed(): number {
    const n = this.sealed;
    this.sealed = 0;
    if (n === 0) return 0;
    const frames = this.frames.splice(0, n);
    const starts = this.starts.splice(0, n);
    for (let i = 0; i < n; i++) {
      this.bytes -= frames[i].length - starts[i];
      this.send(frames[i], starts[i]);
    }
    this.counters.flushed += n;
    return n;
  }

  /** Sends every held frame in order, then opens the gate. Returns how many were flushed. */
  release(): number {
    const frames = this.frames;
    const starts = this.starts;
    this.frames = [];
    this.starts = [];
    this.bytes = 0;
    this.sealed = 0;
    for (let i = 0; i < frames.length; i++) this.send(frames[i], starts[i]);
    this.counters.flushed += frames.length;
    this.closed = false;
    return frames.length;
  }

  private send(frame: Buffer, start: number): void {
    if (!this.out.send(frame, start)) this.counters.sendFailures++;
  }
}
