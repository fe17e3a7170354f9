import type { Decision, Side } from '../../compare/types.js';
import type { ModeSwitch } from '../../compare/protection-mode.js';
import type { CaptureReader } from '../capture/record.js';
import type { ReplayEngine } from './engine-port.js';
import type { ReplayHooks } from './hooks.js';
import { GuestLag } from './guest-lag.js';
import { round } from './latency.js';
import { ReplayModeRunner } from './modes.js';
import { defaultReplayOptions, summaryOptions, type ReplayOptions } from './options.js';
import type { CheckpointReason, ReplayCheckpoint, ReplayInput, ReplaySummary } from './summary.js';
import { Tally } from './tally.js';

export interface ReplaySource {
  reader: CaptureReader;
  /** pcapng interface index the reader is filtered to; null for pcap. */
  interface: number | null;
  /** File size in bytes, for progress; 0 when unknown. */
  size: number;
}

export type { ClockJump, ReplayHooks, ReplayProgress } from './hooks.js';

interface Request {
  reason: CheckpointReason;
  requestedAt: number;
  requests: number;
}

interface InFlight extends Request {
  startedAt: number;
  completesAt: number;
}

/**
 * Replays two egress captures through the engine on a virtual clock (docs/replay.md, "The virtual clock").
 * Deterministic: the output depends only on the inputs and the options, never on --speed or the machine.
 */
export async function replay(
  primary: ReplaySource,
  secondary: ReplaySource,
  engine: ReplayEngine,
  options: ReplayOptions = defaultReplayOptions,
  hooks: ReplayHooks = {},
): Promise<ReplaySummary> {
  return new Replayer(primary, secondary, engine, options, hooks).run();
}

class Replayer {
  private now = 0;
  private nextTick: number;
  private timerDeadline: number;
  /** CHKPOINT_TIMER runs while frames come in; 0 ms disables it. */
  private timerEnabled: boolean;
  private inFlight: InFlight | null = null;
  private pending: Request | null = null;
  private readonly tally = new Tally();
  private originSeconds = 0;
  private originNanoseconds = 0;
  private firstFrameEpochMs: number | null = null;
  private lastFrameMs = 0;
  private draining = false;
  private wallStart = 0;
  private readonly jumps = { count: 0, jumpedMs: 0, largestMs: 0, timersSkipped: 0 };
  /** Virtual time --speed does not wait for: the long part of long gaps. */
  private unpacedMs = 0;
  private readonly modes: ReplayModeRunner | null;
  private readonly lag: GuestLag | null;

  constructor(
    private readonly primary: ReplaySource,
    private readonly secondary: ReplaySource,
    private readonly engine: ReplayEngine,
    private readonly options: ReplayOptions,
    private readonly hooks: ReplayHooks,
  ) {
    this.nextTick = options.expiredScanCycleMs;
    this.modes =
      options.modes === undefined ? null : new ReplayModeRunner(options.modes, (change) => this.switched(change));
    this.lag = options.guestBusyShare === undefined ? null : new GuestLag(options.guestBusyShare);
    this.timerDeadline = this.timerPeriod();
    this.timerEnabled = this.timerPeriod() > 0;
  }

  /** CHKPOINT_TIMER, or periodic mode's period while it holds the output. */
  private timerPeriod(): number {
    const modes = this.modes;
    return modes !== null && modes.periodic() ? modes.options.thresholds.periodMs : this.options.checkpointTimerMs;
  }

  /** A hybrid switch: the checkpoint timer takes the new mode's period from now. */
  private switched(change: ModeSwitch): void {
    if (!this.draining) {
      this.timerEnabled = this.timerPeriod() > 0;
      this.timerDeadline = this.now + this.timerPeriod();
    }
    this.hooks.onModeSwitch?.(change);
  }

  async run(): Promise<ReplaySummary> {
    const p = this.primary.reader;
    const s = this.secondary.reader;
    let haveP = this.advance(p, 'primary');
    let haveS = this.advance(s, 'secondary');
    if (haveP || haveS) {
      const first = !haveS || (haveP && !later(p, s)) ? p.record : s.record;
      this.originSeconds = first.seconds;
      this.originNanoseconds = first.nanoseconds;
      this.firstFrameEpochMs = first.seconds * 1000 + first.nanoseconds / 1e6;
      this.tally.epochOriginMs = this.firstFrameEpochMs;
    }
    const origin = { seconds: this.originSeconds, nanoseconds: this.originNanoseconds };
    this.hooks.onStart?.(this.firstFrameEpochMs === null ? null : origin);
    if (this.modes?.periodic() === true) this.timerEnabled = true;
    const every = this.hooks.progressEvery ?? 65536;
    let sinceYield = 0;
    this.wallStart = performance.now();
    while (haveP || haveS) {
      // Primary first on equal timestamps: fixed, so the output is deterministic.
      const side: Side = !haveS || (haveP && !later(p, s)) ? 'primary' : 'secondary';
      const reader = side === 'primary' ? p : s;
      const record = reader.record;
      const captured =
        (record.seconds - this.originSeconds) * 1000 + (record.nanoseconds - this.originNanoseconds) / 1e6;
      let at = this.lag === null ? captured : this.lag.frameAt(captured);
      if (at < this.now) {
        this.tally.frames.outOfOrder++;
        at = this.now;
      }
      if (this.options.speed > 0) await this.pace(at);
      this.advanceTo(at);
      this.lastFrameMs = at;
      if (side === 'primary' && this.lag !== null) this.modes?.capturedAt(record.data, captured);
      this.pushFrame(side, record.data, at);
      if (side === 'primary') haveP = this.advance(p, 'primary');
      else haveS = this.advance(s, 'secondary');
      if (++sinceYield >= every) {
        sinceYield = 0;
        this.reportProgress();
        // Let streams (divergence pcapng, event log) drain and a terminal progress bar repaint.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    this.drain();
    this.reportProgress();
    return this.summary();
  }

  private advance(reader: CaptureReader, side: Side): boolean {
    if (reader.next()) return true;
    this.tally.readError(side, reader);
    return false;
  }

  private pushFrame(side: Side, frame: Buffer, at: number): void {
    // The engine's inspect() lets one dissection serve both the connection counts and the push.
    const engine = this.engine;
    const dissected = engine.inspect === undefined ? undefined : engine.inspect(frame, 0);
    const tag = this.tally.frameIn(side, frame, at, dissected);
    this.handle(engine.push(side, frame, 0, at, tag), at);
  }

  /**
   * Runs every timed event (checkpoint completion, tick, CHKPOINT_TIMER) due at or before `t`, the next
   * frame's time. Between two frames the clock never repeats itself over empty time: CHKPOINT_TIMER fires
   * at most once before `t` (the firings it skips make one jump, however long the gap), and no tick runs
   * once every frame held at the start has had its timeout (nothing new arrives that a scan could find).
   */
  private advanceTo(t: number): void {
    // Fast path, almost every frame: nothing falls due by t (the loop below would only set now).
    if (
      t < this.nextTick &&
      (!this.timerEnabled || t < this.timerDeadline) &&
      (this.inFlight === null || t < this.inFlight.completesAt)
    ) {
      this.now = t;
      return;
    }
    const cycle = this.options.expiredScanCycleMs;
    // A tick after this finds nothing the ticks before it did not: every frame held now has timed out.
    const quietAt = this.now + this.options.compareTimeoutMs + cycle;
    let timerFired = false;
    let timersSkipped = 0;
    while (true) {
      if (this.nextTick <= t && (this.tally.nothingHeld() || this.nextTick > quietAt)) {
        // Nothing to scan, or nothing a scan could still find: skip those cycles instead of ticking through them.
        this.nextTick += Math.floor((t - this.nextTick) / cycle + 1) * cycle;
      }
      if (this.timerEnabled && timerFired && this.timerDeadline < t) {
        // A second firing before the next frame would checkpoint nothing new: keep the timer's phase, skip the rest.
        const period = this.timerPeriod();
        const skipped = Math.ceil((t - this.timerDeadline) / period);
        timersSkipped += skipped;
        this.timerDeadline += skipped * period;
      }
      const completes = this.inFlight?.completesAt ?? Infinity;
      const timer = this.timerEnabled ? this.timerDeadline : Infinity;
      const next = Math.min(completes, this.nextTick, timer);
      if (next > t) break;
      this.now = next;
      if (next === completes) this.completeCheckpoint();
      else if (next === this.nextTick) {
        this.nextTick += cycle;
        this.handle(this.engine.tick(next), next);
      } else {
        // Re-armed at once: a timer that fires while a checkpoint is in flight must not fire again at once.
        this.timerDeadline = next + this.timerPeriod();
        timerFired = true;
        this.request('timer', next);
      }
    }
    if (timersSkipped > 0) this.jump(t, timersSkipped);
    this.now = t;
  }

  /** One jump over empty time, from the last event run (now) to the frame at `to`. */
  private jump(to: number, timersSkipped: number): void {
    const size = to - this.now;
    this.jumps.count++;
    this.jumps.jumpedMs += size;
    this.jumps.largestMs = Math.max(this.jumps.largestMs, size);
    this.jumps.timersSkipped += timersSkipped;
    this.hooks.onJump?.({ from: round(this.now), to: round(to), timersSkipped });
  }

  /** After the last frame: no more CHKPOINT_TIMER; finish checkpoints and let held frames time out. */
  private drain(): void {
    this.draining = true;
    this.timerEnabled = false;
    const until = this.lastFrameMs + this.options.compareTimeoutMs + this.options.expiredScanCycleMs;
    while (true) {
      if (this.inFlight !== null) {
        this.advanceTo(Math.min(this.inFlight.completesAt, Math.max(this.nextTick, this.now)));
        continue;
      }
      if ((this.modes?.heldCount() ?? 0) > 0) {
        // Periodic output still held after the last frame: one more checkpoint releases it.
        this.request('timer', this.now);
        continue;
      }
      if (this.tally.nothingHeld() || this.nextTick > until) break;
      this.advanceTo(this.nextTick);
    }
  }

  private request(reason: CheckpointReason, at: number): void {
    if (this.inFlight === null) {
      this.start({ reason, requestedAt: at, requests: 1 });
    } else if (this.pending === null) {
      this.pending = { reason, requestedAt: at, requests: 1 };
    } else {
      this.pending.requests++;
    }
  }

  private start(request: Request): void {
    this.inFlight = { ...request, startedAt: this.now, completesAt: this.now + this.options.checkpointDurationMs };
    // QEMU re-arms the checkpoint timer whenever a checkpoint is asked for and started.
    this.timerDeadline = this.now + this.timerPeriod();
    this.lag?.paused(this.options.checkpointDurationMs);
    if (request.reason !== 'timer') this.modes?.divergenceCheckpoint(this.now);
  }

  private completeCheckpoint(): void {
    const done = this.inFlight;
    if (done === null) return;
    this.inFlight = null;
    this.tally.resetFlush();
    this.handle(this.engine.flush(this.now), this.now);
    const modes = this.modes;
    if (modes !== null) {
      const released = modes.checkpointCompleted(done.startedAt, done.completesAt);
      if (released.length > 0)
        this.tally.decision({ release: released, drop: [], divergences: [], malformed: [] }, this.now);
    }
    const checkpoint: ReplayCheckpoint = {
      index: this.tally.checkpoints.length + 1,
      reason: done.reason,
      requestedAt: round(done.requestedAt),
      startedAt: round(done.startedAt),
      completedAt: round(done.completesAt),
      requests: done.requests,
      released: this.tally.flushReleased,
      dropped: this.tally.flushDropped,
    };
    this.tally.checkpoints.push(checkpoint);
    this.hooks.onCheckpoint?.(checkpoint);
    const next = this.pending;
    this.pending = null;
    if (next !== null) this.start(next);
  }

  private handle(decision: Decision, at: number): void {
    const modes = this.modes;
    // Periodic mode holds what the engine releases; its divergences are statistics, not checkpoint requests.
    const holding = modes !== null && modes.periodic();
    this.tally.decision(modes === null ? decision : modes.route(decision, at), at);
    const divergences = decision.divergences;
    for (let i = 0; i < divergences.length; i++) {
      const d = divergences[i];
      this.hooks.onDivergence?.(d);
      if (!holding) this.request(d.reason, at);
    }
  }

  private async pace(at: number): Promise<void> {
    // Real time skips a long gap too: wait only as long as the clock can still have work in it (one timer
    // firing and its checkpoint, or the ticks that may still find a timeout).
    const o = this.options;
    const longest = Math.max(o.checkpointTimerMs, o.compareTimeoutMs + o.expiredScanCycleMs) + o.checkpointDurationMs;
    this.unpacedMs += Math.max(0, at - this.now - longest);
    const due = this.wallStart + (at - this.unpacedMs) / o.speed;
    const wait = due - performance.now();
    if (wait > 1) await new Promise<void>((resolve) => setTimeout(resolve, wait));
  }

  private reportProgress(): void {
    const onProgress = this.hooks.onProgress;
    if (onProgress === undefined) return;
    const size = this.primary.size + this.secondary.size;
    const done = this.primary.reader.record.offset + this.secondary.reader.record.offset;
    onProgress({
      frames: this.tally.frames.primary + this.tally.frames.secondary,
      fraction: size > 0 ? Math.min(1, done / size) : NaN,
      virtualMs: this.now,
    });
  }

  private summary(): ReplaySummary {
    const { schema, version, ...counts } = this.tally.counts();
    // Spelled out first so the JSON reads in the documented order: what was replayed, then what happened.
    return {
      schema,
      version,
      inputs: {
        primary: this.input(this.primary, 'primary'),
        secondary: this.input(this.secondary, 'secondary'),
      },
      options: summaryOptions(this.options),
      capture: {
        firstFrameEpochMs: this.firstFrameEpochMs,
        lastFrameMs: round(this.lastFrameMs),
        endMs: round(this.now),
      },
      clock: {
        jumps: this.jumps.count,
        jumpedMs: round(this.jumps.jumpedMs),
        largestJumpMs: round(this.jumps.largestMs),
        timersSkipped: this.jumps.timersSkipped,
      },
      ...counts,
      ...(this.modes === null ? {} : { modes: this.modes.summary(this.now, counts.checkpoints.total) }),
    };
  }

  private input(source: ReplaySource, side: Side): ReplayInput {
    const reader = source.reader;
    return {
      file: reader.file,
      format: reader.format,
      interface: source.interface,
      frames: side === 'primary' ? this.tally.frames.primary : this.tally.frames.secondary,
      bytes: this.tally.bytesRead(side),
    };
  }
}

/** True when a's current record is strictly later than b's. */
function later(a: CaptureReader, b: CaptureReader): boolean {
  const x = a.record;
  const y = b.record;
  return x.seconds > y.seconds || (x.seconds === y.seconds && x.nanoseconds > y.nanoseconds);
}
