import type { Logger } from 'pino';
import type { ModeSwitch } from '../compare/protection-mode.js';
import type { Decision, Divergence, Packet, Side } from '../compare/types.js';
import {
  zeroLoopCounters,
  type CompareEngineLike,
  type CompareLoopOptions,
  type EventLines,
  type LoopCounters,
  type LoopObserver,
  type ShutdownFlush,
} from './compare-loop-types.js';
import { CheckpointRequests } from './checkpoint-requests.js';
import { InputFairness } from './fairness.js';
import { compareModeOnly, LoopProtection, type ProtectionStatus } from './loop-protection.js';
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
 * it releases go to outdev in exactly the order released; divergences become checkpoint requests, sent by
 * the rate rule of proxy/checkpoint-requests.ts (or, with no notifier, answered by a local flush).
 *
 * Backpressure: when outdev's backlog passes its high-water mark both inputs are paused until it drains, so
 * a slow outdev bounds memory instead of growing it. Fairness (proxy/fairness.ts): an input far ahead of the
 * other is held (not read) until the other catches up or stays silent.
 *
 * Protection modes (proxy/loop-protection.ts): in periodic mode the frames the engine releases are held and
 * a DO_CHECKPOINT is sent a period after the last one started; its COLO_CHECKPOINT releases the held frames
 * that arrived before it was sent. Divergences are then only counted (background). Hybrid switches between
 * the two modes; pass-through frames are released at once in every mode.
 *
 * Input frames are views of the read slabs (ports/read-slabs.ts): each one is reported done() once it is
 * copied into the output batch (in periodic mode, when its checkpoint releases it), dropped or rejected, so
 * the slab it came from can be read into again.
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
  private readonly requests: CheckpointRequests;
  private paused = false;
  private scanTimer: NodeJS.Timeout | null = null;
  private latencySample = 0;
  private readonly protection: LoopProtection;
  /** Primary frames pushed so far: each one's number is its packet tag, which periodic mode cuts at. */
  private primaryArrivals = 0;
  private periodTimer: NodeJS.Timeout | null = null;
  /** Pass-through frames released while holding (reused). */
  private readonly passing: Packet[] = [];
  /** Shutting down: everything the engine releases goes out, held or not. */
  private closing = false;

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
    this.requests = new CheckpointRequests(options.notifier, this.counters, this.lines, options.compareTimeoutMs);
    const protection = options.protection ?? compareModeOnly;
    if (protection.mode !== 'compare' && !this.requests.answerable) {
      throw new RangeError(`protection mode ${protection.mode}: needs a notifier, since only a checkpoint releases`);
    }
    this.protection = new LoopProtection(protection, this.counters, this.clock());
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
    this.armPeriod(this.clock());
  }

  stop(): void {
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    this.scanTimer = null;
    this.armPeriod(0); // clears it: the loop no longer runs
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
    this.armPeriod(0);
    this.fairness.stop();
    this.closing = true;
    const now = this.clock();
    // Periodic mode's held frames are older than anything the engine still holds: they go first.
    const held = this.protection.hold.take(Infinity);
    this.emit(held, now);
    const decision = this.engine.flush(now);
    const flushedFrames = held.length + decision.release.length;
    const flushed = { flushedFrames, droppedFrames: decision.drop.length };
    this.consume(decision, now);
    this.flushOutput();
    return flushed;
  }

  /** True between a DO_CHECKPOINT and the COLO_CHECKPOINT that answers it. */
  get checkpointOutstanding(): boolean {
    return this.requests.outstanding;
  }

  get inputsPaused(): boolean {
    return this.paused;
  }

  /** The protection mode in force and what periodic mode holds (the drop-in's /stats). */
  protectionStatus(): ProtectionStatus {
    return this.protection.status(this.clock());
  }

  input(side: Side, frame: Buffer, start: number, now: number): void {
    // The engine's contract is never to throw; if a bug makes it, one frame is lost loudly (counted and
    // logged) rather than the process and every connection with it. try/catch costs nothing in V8 here.
    try {
      const arrival = side === 'primary' ? ++this.primaryArrivals : 0;
      this.consume(this.engine.push(side, frame, start, now, arrival), now);
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

  /**
   * A checkpoint completed (COLO_CHECKPOINT): the engine releases every primary frame it held, in order, and
   * drops the rest; in periodic mode the hold lets out what arrived before the request (class comment).
   */
  checkpointDone(): void {
    const now = this.clock();
    this.counters.flushes++;
    this.requests.answered();
    const change = this.protection.completed(now);
    this.consume(this.engine.flush(now), now);
    const released = this.protection.takeReleased();
    if (released.length !== 0) this.emit(released, now);
    this.onSwitch(change, now);
    this.armPeriod(now);
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
      if (this.protection.holding && !this.closing) this.holdReleases(release, now);
      else this.emit(release, now);
    }
    const drop = decision.drop;
    for (let i = 0; i < drop.length; i++) slabs.done(drop[i].frame);
    this.counters.dropped += drop.length;
    if (decision.malformed.length !== 0) this.onMalformed(decision);
    if (decision.divergences.length !== 0) this.onDivergences(decision.divergences, now);
  }

  /** Copies `release` into the output batch, in order, and lets their read slabs go. */
  private emit(release: readonly Packet[], now: number): void {
    const observer = this.observer;
    const slabs = this.readSlabs;
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

  /** Periodic mode, or frames still held after a switch back: releases wait for a checkpoint. */
  private holdReleases(release: readonly Packet[], now: number): void {
    const passing = this.passing;
    passing.length = 0;
    this.protection.route(release, passing);
    if (passing.length !== 0) this.emit(passing, now);
    const hold = this.protection.hold;
    if (!hold.overBound()) return;
    const { frames, bytes } = hold;
    const count = ++this.counters.periodicBoundReleases;
    this.counters.periodicBoundReleased += frames;
    const fields = { frames, bytes, ...hold.bounds, count, checkpointOutstanding: this.requests.outstanding };
    const msg = 'periodic hold passed its bound: held frames released before their checkpoint (unprotected)';
    this.lines.line('warn', 'periodic-bound', fields, msg);
    this.emit(hold.take(Infinity), now);
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
    const periodic = this.protection.periodic;
    for (const d of divergences) {
      this.counters.divergences++;
      if (periodic) {
        this.protection.backgroundDivergence(now);
        const fields = { reason: d.reason, connection: d.connection, offset: d.offset, detail: d.detail };
        this.lines.line('info', 'divergence', fields, 'divergence in periodic mode: counted, no checkpoint asked');
        continue;
      }
      this.observer?.recordCheckpointRequest(d.reason);
      if (this.requests.divergence(d, now)) this.sent(now, true);
    }
  }

  /** A DO_CHECKPOINT went out at `now` (for a divergence, or periodic mode's). */
  private sent(now: number, byDivergence: boolean): void {
    this.onSwitch(this.protection.requested(now, this.primaryArrivals, byDivergence), now);
  }

  /** Periodic mode's request: on its period, or to release the hold after a switch back to compare. */
  private requestForHold(now: number): void {
    if (!this.requests.periodic()) return;
    this.observer?.recordCheckpointRequest('periodic');
    this.sent(now, false);
  }

  /** (Re)arms periodic mode's request timer; clears it in compare mode, while one is outstanding or stopped. */
  private armPeriod(now: number): void {
    if (this.periodTimer !== null) clearTimeout(this.periodTimer);
    this.periodTimer = null;
    if (this.scanTimer === null || this.closing || this.requests.outstanding || !this.protection.periodic) return;
    const delay = Math.max(0, this.protection.nextRequestAt() - now);
    this.periodTimer = setTimeout(() => {
      this.periodTimer = null;
      if (this.protection.periodic) this.requestForHold(this.clock());
    }, delay);
  }

  private onSwitch(change: ModeSwitch | null, now: number): void {
    if (change === null) return;
    const { from, to, reason, divergences, pausedShare } = change;
    const heldFrames = this.protection.hold.frames;
    this.log.info(
      { from, to, reason, divergences, pausedShare, heldFrames },
      `protection mode ${from} -> ${to} (${reason})`,
    );
    this.observer?.modeSwitch(change);
    this.armPeriod(now);
    // Back in compare mode, frames held for a checkpoint still need one.
    if (to === 'compare' && heldFrames !== 0) this.requestForHold(now);
  }

  private scan(): void {
    const now = this.clock();
    try {
      this.consume(this.engine.tick(now), now);
      this.onSwitch(this.protection.evaluate(now), now);
      if (this.requests.localFlushDue(now)) {
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
