import type { Logger } from 'pino';
import type { Decision, Divergence, Side } from '../compare/types.js';
import {
  zeroLoopCounters,
  type CompareEngineLike,
  type CompareLoopOptions,
  type EventLines,
  type LoopCounters,
  type LoopObserver,
  type ShutdownFlush,
} from './compare-loop-types.js';
import { InputFairness } from './fairness.js';
import type { ChunkSink, FramedSocket } from './ports/framed-socket.js';
import { FrameBatch } from './ports/framed.js';
import type { FramingRejectReason } from './port.js';
import { ReadSlabs } from './ports/read-slabs.js';

/**
 * One released frame in this many has its hold time observed. A histogram observation costs about five
 * times the rest of the per-decision statistics; a 1-in-8 sample keeps the quantiles and drops the cost.
 */
export const LATENCY_SAMPLE_EVERY = 8;

/** Logs the 1st, 2nd, 4th, 8th... occurrence: a flood of bad input costs log2(n) lines, not n. */
function worthLogging(count: number): boolean {
  return (count & (count - 1)) === 0;
}

/** Feeds one input socket's frames into the loop. One per side: no closure per frame. */
class InputSink implements ChunkSink {
  private now = -1;
  private frames = 0;
  constructor(
    private readonly loop: CompareLoop,
    private readonly side: Side,
  ) {}

  onFrame(frame: Buffer, start: number): void {
    // One clock read per read chunk, not per frame: frames of one chunk arrived together.
    if (this.now < 0) this.now = this.loop.clock();
    this.frames++;
    this.loop.input(this.side, frame, start, this.now);
  }

  onReject(reason: FramingRejectReason, length: number): void {
    this.loop.framingReject(this.side, reason, length);
  }

  onChunkEnd(): void {
    this.now = -1;
    const frames = this.frames;
    this.frames = 0;
    this.loop.chunkEnd(this.side, frames);
  }
}

/**
 * The drop-in's data plane: primary_in and secondary_in frames go through the comparison engine; the frames
 * it releases go to outdev in exactly the order released; divergences become checkpoint requests.
 *
 * Checkpoint-request rate rule: each divergence the engine reports is counted (by reason) as a request.
 * A DO_CHECKPOINT is sent for it unless one is already outstanding (sent, and no COLO_CHECKPOINT since):
 * one checkpoint resolves every diverged connection, so later divergences are coalesced into it. The engine
 * itself reports a diverged connection once and then holds it until flush (QEMU re-notifies on every later
 * packet of that connection and on every timer scan).
 *
 * Without a notifier nobody can checkpoint: each request is logged and counted, and compare_timeout after
 * the first unanswered one the loop flushes locally (releases the held primary frames, drops the
 * secondary's) so clients are not stalled forever; those connections ran unprotected until then.
 *
 * Backpressure: when outdev's backlog passes its high-water mark both inputs are paused until it drains, so
 * a slow outdev bounds memory instead of growing it. Fairness (proxy/fairness.ts): an input far ahead of the
 * other is held (not read) until the other catches up or stays silent.
 *
 * Input frames are views of the read slabs (ports/read-slabs.ts): each one is reported done() once the engine
 * has released (and the loop copied it into the output batch), dropped or rejected it, so the slab it came
 * from can be read into again.
 */
export class CompareLoop {
  readonly counters: LoopCounters = zeroLoopCounters();
  readonly clock: () => number;
  /** Give these to the input sockets (FramedSocket readSlabs): the loop reports their frames done. */
  readonly readSlabs = new ReadSlabs();
  private readonly engine: CompareEngineLike;
  private readonly options: CompareLoopOptions;
  private readonly log: Logger;
  private readonly lines: EventLines;
  private readonly observer: LoopObserver | null;
  private readonly batch: FrameBatch;
  private readonly sinks: Record<Side, InputSink>;
  private outdev: FramedSocket | null = null;
  private inputs: FramedSocket[] = [];
  private readonly fairness: InputFairness;
  private outstanding = false;
  private localFlushAt = 0;
  private paused = false;
  private scanTimer: NodeJS.Timeout | null = null;
  private latencySample = 0;

  constructor(options: CompareLoopOptions) {
    this.options = options;
    this.engine = options.engine;
    this.log = options.logger;
    this.lines = options.lines ?? { line: (level, kind, fields, msg) => this.log[level]({ ...fields, kind }, msg) };
    this.observer = options.observer ?? null;
    this.clock = options.clock ?? Date.now;
    this.batch = new FrameBatch(options.vnetHdr);
    this.sinks = { primary: new InputSink(this, 'primary'), secondary: new InputSink(this, 'secondary') };
    this.fairness = new InputFairness(this.counters);
  }

  /** The sink to give the FramedSocket of `side`'s input. */
  sinkFor(side: Side): ChunkSink {
    return this.sinks[side];
  }

  /** Connects the sockets and starts the stale-packet scan (every expired_scan_cycle). */
  start(ports: { primary: FramedSocket; secondary: FramedSocket; outdev: FramedSocket }): void {
    this.inputs = [ports.primary, ports.secondary];
    this.fairness.attach({ primary: ports.primary, secondary: ports.secondary });
    this.outdev = ports.outdev;
    ports.outdev.on('drain', () => this.resumeInputs());
    this.scanTimer = setInterval(() => this.scan(), this.options.expiredScanCycleMs);
  }

  stop(): void {
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    this.scanTimer = null;
    this.fairness.stop();
    this.flushOutput();
  }

  /**
   * Shutting down (SIGTERM): stop reading both inputs, then flush the engine as a checkpoint would (every held
   * primary frame released in order, every held secondary dropped) and write the releases to outdev. What
   * outdev's socket does not take before it closes is the caller's to report (FramedSocket backlog).
   */
  shutdown(): ShutdownFlush {
    for (const input of this.inputs) input.pause();
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    this.scanTimer = null;
    this.fairness.stop();
    const now = this.clock();
    const decision = this.engine.flush(now);
    const flushed = { flushedFrames: decision.release.length, droppedFrames: decision.drop.length };
    this.consume(decision, now);
    this.flushOutput();
    return flushed;
  }

  /** True between a DO_CHECKPOINT and the COLO_CHECKPOINT that answers it. */
  get checkpointOutstanding(): boolean {
    return this.outstanding;
  }

  get inputsPaused(): boolean {
    return this.paused;
  }

  input(side: Side, frame: Buffer, start: number, now: number): void {
    // The engine's contract is never to throw; if a bug makes it, one frame is lost loudly (counted and
    // logged) rather than the process and every connection with it. try/catch costs nothing in V8 here.
    try {
      this.consume(this.engine.push(side, frame, start, now), now);
    } catch (err) {
      this.internalError(side, err);
    }
  }

  private internalError(side: Side | 'scan', err: unknown): void {
    const count = ++this.counters.internalErrors;
    if (side !== 'scan') this.observer?.recordMalformed(side, 'internal-error');
    if (worthLogging(count)) {
      this.log.error({ side, count, err: err instanceof Error ? err.stack : String(err) }, 'comparison engine threw');
    }
  }

  /** One input chunk has been decoded (n frames): account, keep the inputs in step, send what was released. */
  chunkEnd(side: Side, n: number): void {
    if (n !== 0) {
      this.counters.framesIn[side] += n;
      this.observer?.recordFramesIn(side, n);
      this.fairness.delivered(side, n);
    }
    this.flushOutput();
  }

  /** Which input, if any, is held (proxy/fairness.ts). */
  get heldInput(): Side | null {
    return this.fairness.held;
  }

  framingReject(side: Side, reason: FramingRejectReason, length: number): void {
    const count = ++this.counters.framing[side][reason];
    this.observer?.recordMalformed(side, `framing-${reason}`);
    const action = reason === 'oversized' ? 'closing this connection only' : 'skipped; stream continues';
    this.lines.line(
      'warn',
      `framing-${reason}`,
      { side, reason, length, count },
      `rejected ${side} frame (${reason}): ${action}`,
    );
  }

  /** A checkpoint completed (COLO_CHECKPOINT): release every held primary frame in order, drop the rest. */
  checkpointDone(): void {
    const now = this.clock();
    this.counters.flushes++;
    this.outstanding = false;
    this.localFlushAt = 0;
    this.consume(this.engine.flush(now), now);
    this.flushOutput();
  }

  /** Sends what the last decisions released, as one write. */
  flushOutput(): void {
    const outdev = this.outdev;
    if (outdev === null) return; // not started: released frames stay batched, in order
    const data = this.batch.take();
    if (data === null) return;
    if (!outdev.write(data)) {
      if (!this.paused) this.pauseInputs();
    } else if (outdev.backlog === 0) {
      // The kernel took the whole write synchronously: nothing references the slab region any more.
      this.batch.recycle();
    }
  }

  private consume(decision: Decision, now: number): void {
    const observer = this.observer;
    const slabs = this.readSlabs;
    observer?.recordDecision(decision);
    const release = decision.release;
    if (release.length !== 0) {
      // A write the kernel did not take at once has completed since (outdev holds nothing): its slab region
      // is free, so the batch restarts at the slab's beginning instead of growing into fresh memory.
      if (this.batch.bytes === 0 && this.outdev?.backlog === 0) this.batch.recycle();
      // Each frame goes out exactly as received; its vnet_hdr_len is where its Ethernet header starts.
      for (let i = 0; i < release.length; i++) {
        const packet = release[i];
        this.batch.append(packet.frame, packet.start);
        slabs.done(packet.frame); // copied: its read memory may be reused
        if (++this.latencySample === LATENCY_SAMPLE_EVERY) {
          this.latencySample = 0;
          observer?.observeCompareLatency(now - packet.arrivedAt);
        }
      }
      this.counters.released += release.length;
    }
    const drop = decision.drop;
    for (let i = 0; i < drop.length; i++) slabs.done(drop[i].frame);
    this.counters.dropped += drop.length;
    if (decision.malformed.length !== 0) this.onMalformed(decision);
    if (decision.divergences.length !== 0) this.onDivergences(decision.divergences, now);
  }

  private onMalformed(decision: Decision): void {
    for (const m of decision.malformed) {
      this.readSlabs.done(m.frame);
      const count = ++this.counters.malformed[m.side];
      const fields = { side: m.side, reason: m.reason, length: m.frame.length, count };
      this.lines.line('warn', 'malformed', fields, 'malformed frame rejected');
    }
  }

  private onDivergences(divergences: readonly Divergence[], now: number): void {
    for (const d of divergences) {
      this.counters.divergences++;
      this.observer?.recordCheckpointRequest(d.reason);
      this.requestCheckpoint(d, now);
    }
  }

  private requestCheckpoint(d: Divergence, now: number): void {
    const fields = { reason: d.reason, connection: d.connection, offset: d.offset, detail: d.detail };
    const notifier = this.options.notifier;
    if (notifier === null) {
      this.counters.checkpointRequestsUnanswered++;
      if (this.localFlushAt === 0) this.localFlushAt = now + this.options.compareTimeoutMs;
      this.lines.line(
        'warn',
        'divergence',
        { ...fields, localFlushInMs: Math.max(0, this.localFlushAt - now) },
        'checkpoint requested but there is no --notify-dev: held frames are released by a local flush',
      );
      return;
    }
    if (this.outstanding) {
      this.counters.checkpointRequestsCoalesced++;
      this.lines.line('info', 'divergence', fields, 'divergence: checkpoint already requested, coalesced');
      return;
    }
    this.outstanding = true;
    this.counters.checkpointRequestsSent++;
    this.lines.line('info', 'divergence', fields, 'divergence: checkpoint requested');
    notifier.requestCheckpoint();
  }

  private scan(): void {
    const now = this.clock();
    try {
      this.consume(this.engine.tick(now), now);
      if (this.localFlushAt !== 0 && now >= this.localFlushAt) {
        this.localFlushAt = 0;
        this.counters.localFlushes++;
        this.log.warn({ localFlushes: this.counters.localFlushes }, 'local flush: no --notify-dev to checkpoint');
        this.consume(this.engine.flush(now), now);
      }
      this.options.afterScan?.();
    } catch (err) {
      this.internalError('scan', err);
    }
    this.flushOutput();
  }

  private pauseInputs(): void {
    this.paused = true;
    this.counters.backpressurePauses++;
    for (const input of this.inputs) input.pause();
  }

  private resumeInputs(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const input of this.inputs) input.resume();
  }
}
