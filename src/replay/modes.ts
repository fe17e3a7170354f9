import {
  defaultModeThresholds,
  ModeController,
  type ActiveMode,
  type ModeSwitch,
  type ModeThresholds,
  type ProtectionMode,
} from '../../compare/protection-mode.js';
import type { Decision, Packet } from '../../compare/types.js';
import { LatencyRecorder, round } from './latency.js';
import type { LatencySummary } from './summary.js';

export interface ReplayModeOptions {
  mode: ProtectionMode;
  thresholds: ModeThresholds;
}

export const defaultReplayModeOptions: ReplayModeOptions = { mode: 'compare', thresholds: defaultModeThresholds };

/** The summary's `modes` section (docs/replay.md, "Protection modes"). */
export interface ReplayModes {
  mode: ProtectionMode;
  thresholds: ModeThresholds;
  /** Every hybrid switch, in order; times are virtual ms. */
  switches: ModeSwitch[];
  /** Switches by `from>to:reason`, e.g. `compare>periodic:divergence-rate`. */
  switchesByKey: Record<string, number>;
  /** Virtual time spent in each mode, up to the end of the replay. */
  timeInMs: Record<ActiveMode, number>;
  /** Virtual time the guests were paused in checkpoints, and its share of the replay's time. */
  pausedMs: number;
  pausedShare: number;
  checkpointsPerSecond: number;
  /** Divergences the comparison found while periodic mode held the output (no checkpoint asked). */
  backgroundDivergences: number;
  /** Primary frames pass-through rules released at once while periodic mode held all other output. */
  passthroughReleasedWhilePeriodic: number;
  /**
   * For each released primary frame: its release time minus its arrival (what the client waits); with
   * guestBusyShare, minus its capture time, so the wait includes the guests' lag behind the capture.
   */
  releaseLatencyMs: LatencySummary;
}

const noPackets: readonly Packet[] = [];

/**
 * The replay's side of the protection modes: asks the controller which mode is in force, holds the
 * primary frames the engine releases while periodic mode buffers output, and hands them back at a
 * checkpoint's completion (LOADED). The replay loop (replay.ts) owns the clock and the checkpoints.
 */
export class ReplayModeRunner {
  readonly controller: ModeController;
  private held: Packet[] = [];
  /** With the guest-lag model: each primary frame's capture time, which the client's wait counts from. */
  private readonly captured = new WeakMap<Buffer, number>();
  private readonly latency = new LatencyRecorder();
  private pausedMs = 0;
  private backgroundDivergences = 0;
  /** Primary frames a pass-through rule released while periodic mode held everything else. */
  private passedEarly = 0;
  /** The decision handed to the tally while frames are held: the engine's, without its releases. */
  private readonly holding: { -readonly [K in keyof Decision]: Decision[K] } = {
    release: noPackets,
    drop: noPackets,
    divergences: [],
    malformed: [],
  };

  constructor(
    readonly options: ReplayModeOptions,
    private readonly onSwitch: (change: ModeSwitch) => void = () => {},
  ) {
    this.controller = new ModeController(options.mode, options.thresholds);
  }

  periodic(): boolean {
    return this.controller.active() === 'periodic';
  }

  heldCount(): number {
    return this.held.length;
  }

  /**
   * One engine decision at `at`: in periodic mode its releases are held (returned decision releases
   * nothing); otherwise they go out now and their latency is recorded.
   */
  route(decision: Decision, at: number): Decision {
    if (!this.periodic()) {
      this.recordReleases(decision.release, at);
      return decision;
    }
    const release = decision.release;
    const now: Packet[] = [];
    for (let i = 0; i < release.length; i++) {
      const p = release[i];
      // A pass-through rule's flow is released at once in every mode: it is what the rule is for.
      if (p.passedByRule === true) now.push(p);
      else this.held.push(p);
    }
    this.passedEarly += now.length;
    this.recordReleases(now, at);
    const h = this.holding;
    h.release = now.length === 0 ? noPackets : now;
    h.drop = decision.drop;
    h.divergences = decision.divergences;
    h.malformed = decision.malformed;
    for (let i = 0; i < decision.divergences.length; i++) {
      this.backgroundDivergences++;
      this.controller.backgroundDivergence(at);
    }
    return h;
  }

  /** The primary frame `frame` left its guest at capture time `at` (later than its replay time by the lag). */
  capturedAt(frame: Buffer, at: number): void {
    this.captured.set(frame, at);
  }

  /** A checkpoint asked for by a divergence started at `at`. */
  divergenceCheckpoint(at: number): void {
    this.report(this.controller.divergenceCheckpoint(at));
  }

  /**
   * A checkpoint ran from `startedAt` to `completedAt` (its LOADED). Returns the held frames it releases:
   * in periodic mode those that arrived before it started (later output belongs to the next epoch); after
   * a switch back to compare, all of them (the engine already matched them).
   */
  checkpointCompleted(startedAt: number, completedAt: number): Packet[] {
    this.pausedMs += completedAt - startedAt;
    this.report(this.controller.paused(startedAt, completedAt));
    if (this.held.length === 0) return [];
    const cut = this.periodic() ? startedAt : Infinity;
    const out: Packet[] = [];
    const keep: Packet[] = [];
    for (const p of this.held) (p.arrivedAt <= cut ? out : keep).push(p);
    this.held = keep;
    this.recordReleases(out, completedAt);
    return out;
  }

  summary(endMs: number, checkpoints: number): ReplayModes {
    const switches = [...this.controller.switches()];
    const switchesByKey: Record<string, number> = {};
    for (const s of switches) {
      const key = `${s.from}>${s.to}:${s.reason}`;
      switchesByKey[key] = (switchesByKey[key] ?? 0) + 1;
    }
    const time = this.controller.timeInModes(endMs);
    return {
      mode: this.options.mode,
      thresholds: { ...this.options.thresholds },
      switches: switches.map((s) => ({ ...s, at: round(s.at) })),
      switchesByKey,
      timeInMs: { compare: round(time.compare), periodic: round(time.periodic) },
      pausedMs: round(this.pausedMs),
      pausedShare: endMs > 0 ? Math.round((this.pausedMs / endMs) * 1e4) / 1e4 : 0,
      checkpointsPerSecond: endMs > 0 ? Math.round((checkpoints / endMs) * 1e6) / 1e3 : 0,
      backgroundDivergences: this.backgroundDivergences,
      passthroughReleasedWhilePeriodic: this.passedEarly,
      releaseLatencyMs: this.latency.summary(),
    };
  }

  private recordReleases(packets: readonly Packet[], at: number): void {
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i];
      this.latency.add(at - (this.captured.get(p.frame) ?? p.arrivedAt));
    }
  }

  private report(change: ModeSwitch | null): void {
    if (change !== null) this.onSwitch(change);
  }
}
