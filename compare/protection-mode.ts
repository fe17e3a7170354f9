/**
 * The protection mode controller (issue 16, docs/replay.md "Protection modes"): pure, no I/O and no timers;
 * every call is given the time. It decides whether output is released by comparison (`compare`, COLO) or
 * held for a fixed-period checkpoint (`periodic`, Remus-style buffering), and in `hybrid` when to switch.
 */

/** What the operator asks for. */
export type ProtectionMode = 'compare' | 'periodic' | 'hybrid';
/** What is in force at a moment: hybrid is always one of these two. */
export type ActiveMode = 'compare' | 'periodic';

export const PROTECTION_MODES: readonly ProtectionMode[] = ['compare', 'periodic', 'hybrid'];

/**
 * Why hybrid switched: too many divergence checkpoints in the window, too much of the window paused,
 * or the background comparison calm long enough to go back to comparing.
 */
export type ModeSwitchReason = 'divergence-rate' | 'paused-share' | 'calm';

export interface ModeThresholds {
  /** P: in periodic mode a checkpoint starts this long after the last one started. */
  periodMs: number;
  /** W: the sliding window the two compare-mode bounds look at. */
  windowMs: number;
  /** N: more than this many divergence checkpoints within W switches to periodic. */
  maxDivergenceCheckpoints: number;
  /** More than this share (0..1) of the last W spent in checkpoints switches to periodic. */
  maxPausedShare: number;
  /** Q: the shortest stay in periodic, and the window the background comparison is judged over. */
  calmMs: number;
  /** M: fewer than this many background divergences within the last Q switches back to compare. */
  calmDivergences: number;
}

/**
 * Defaults, for a 20 ms checkpoint (the replay's default) and guests busy about half the time; tuned with
 * `npm run bench:hybrid` (docs/benchmarks.md, "Protection modes"):
 * - periodMs 100: a held frame waits at most P plus one checkpoint (p99 about 115 ms), and periodic mode
 *   pauses the guests D / P = 20 % of the time, well inside the idle half of a half-busy guest.
 * - windowMs 500, maxDivergenceCheckpoints 12: more than 24 divergence checkpoints a second pause the
 *   guests about half the time, as much idle time as a half-busy guest has: past it their backlog grows
 *   without bound and every reply waits longer than periodic mode's worst. A short window notices that
 *   within a few hundred ms, before the backlog is large; the count bound sits just past the rate.
 * - maxPausedShare 0.45: the same point measured directly (checkpoints that take longer than D count
 *   fully), judged once a whole window of comparing has passed.
 * - calmMs 2000, calmDivergences 20: back to comparing once the background comparison shows fewer than 10
 *   divergences a second over four windows: half the rate that switched, so a workload near the bound does
 *   not switch back and forth, and long enough that one quiet moment does not count as calm.
 */
export const defaultModeThresholds: ModeThresholds = {
  periodMs: 100,
  windowMs: 500,
  maxDivergenceCheckpoints: 12,
  maxPausedShare: 0.45,
  calmMs: 2000,
  calmDivergences: 20,
};

export interface ModeSwitch {
  at: number;
  from: ActiveMode;
  to: ActiveMode;
  reason: ModeSwitchReason;
  /** Divergence checkpoints (to periodic) or background divergences (to compare) in the window judged. */
  divergences: number;
  /** Share of the window spent paused in checkpoints (0..1), when the switch was judged. */
  pausedShare: number;
}

/** Checks thresholds, naming the first bad one; returns them for chaining. Exceptions: config time only. */
export function validateThresholds(t: ModeThresholds): ModeThresholds {
  const positive: (keyof ModeThresholds)[] = ['periodMs', 'windowMs', 'calmMs'];
  for (const key of positive) {
    if (!(t[key] > 0)) throw new RangeError(`${key}: expected a number > 0, received ${t[key]}`);
  }
  for (const key of ['maxDivergenceCheckpoints', 'calmDivergences'] as const) {
    if (!Number.isInteger(t[key]) || t[key] < 0) {
      throw new RangeError(`${key}: expected an integer >= 0, received ${t[key]}`);
    }
  }
  if (!(t.maxPausedShare > 0 && t.maxPausedShare <= 1)) {
    throw new RangeError(`maxPausedShare: expected a number in (0, 1], received ${t.maxPausedShare}`);
  }
  return t;
}

export class ModeController {
  private current: ActiveMode;
  private since = 0;
  /** Compare mode: start times of divergence checkpoints within the window. */
  private readonly divergenceCheckpoints: number[] = [];
  /** Periodic mode: times of divergences the background comparison found. */
  private readonly background: number[] = [];
  /** Checkpoint pauses [start, end], oldest first, kept while they overlap the window. */
  private readonly pauses: [number, number][] = [];
  private readonly switchList: ModeSwitch[] = [];
  private switchTotal = 0;
  private readonly timeIn: Record<ActiveMode, number> = { compare: 0, periodic: 0 };
  /** Only hybrid switches, so only hybrid keeps what the switches are judged on. */
  private readonly hybrid: boolean;

  /**
   * `keepSwitches`: how many of the latest switches switches() keeps. A replay lists every one; a proxy that
   * runs for months keeps a few, so flapping cannot grow its memory.
   */
  constructor(
    readonly mode: ProtectionMode,
    readonly thresholds: ModeThresholds = defaultModeThresholds,
    start = 0,
    private readonly keepSwitches = Infinity,
  ) {
    validateThresholds(thresholds);
    this.hybrid = mode === 'hybrid';
    this.current = mode === 'periodic' ? 'periodic' : 'compare';
    this.since = start;
  }

  /**
   * The times kept for hybrid's judgements, each list trimmed to its window when judged. Compare and periodic
   * never switch and keep none, so a proxy that runs for months in either does not grow.
   */
  retained(): number {
    return this.divergenceCheckpoints.length + this.background.length + this.pauses.length;
  }

  active(): ActiveMode {
    return this.current;
  }

  /** The latest switches (all of them unless keepSwitches bounds the list), oldest first. */
  switches(): readonly ModeSwitch[] {
    return this.switchList;
  }

  /** Every switch made, including those no longer kept. */
  switchCount(): number {
    return this.switchTotal;
  }

  /** Time spent in each mode up to `now`. */
  timeInModes(now: number): Record<ActiveMode, number> {
    const out = { ...this.timeIn };
    out[this.current] += Math.max(0, now - this.since);
    return out;
  }

  /** A checkpoint a divergence asked for started at `at` (compare mode counts these). */
  divergenceCheckpoint(at: number): ModeSwitch | null {
    if (this.hybrid && this.current === 'compare') this.divergenceCheckpoints.push(at);
    return this.evaluate(at);
  }

  /** A divergence found while periodic mode held the output (the comparison runs on for statistics). */
  backgroundDivergence(at: number): void {
    if (this.hybrid && this.current === 'periodic') this.background.push(at);
  }

  /** The guests were paused for a checkpoint from `start` to `end`; judged at `end`. */
  paused(start: number, end: number): ModeSwitch | null {
    if (this.hybrid) this.pauses.push([start, end]);
    return this.evaluate(end);
  }

  /** Judges the thresholds at `now`; returns the switch made, if any. Only hybrid ever switches. */
  evaluate(now: number): ModeSwitch | null {
    if (this.mode !== 'hybrid') return null;
    const t = this.thresholds;
    if (this.current === 'compare') {
      const from = now - t.windowMs;
      dropBefore(this.divergenceCheckpoints, from);
      const count = this.divergenceCheckpoints.length;
      const share = this.pausedShare(now);
      if (count > t.maxDivergenceCheckpoints) return this.switchTo('periodic', now, 'divergence-rate', count, share);
      // A share judged over less than a whole window of comparing would switch on one early checkpoint.
      if (now - this.since >= t.windowMs && share > t.maxPausedShare) {
        return this.switchTo('periodic', now, 'paused-share', count, share);
      }
      return null;
    }
    // Trims the pauses too: a long stay in periodic (a live drop-in's) would otherwise pile one up per period.
    this.pausedShare(now);
    if (now - this.since < t.calmMs) return null;
    dropBefore(this.background, now - t.calmMs);
    const count = this.background.length;
    if (count < t.calmDivergences) return this.switchTo('compare', now, 'calm', count, this.pausedShare(now));
    return null;
  }

  /** Share of the window ending at `now` (or of the time in this mode, if shorter) spent paused. */
  pausedShare(now: number): number {
    const from = Math.max(now - this.thresholds.windowMs, this.since);
    while (this.pauses.length > 0 && this.pauses[0][1] <= now - this.thresholds.windowMs) this.pauses.shift();
    const span = now - from;
    if (span <= 0) return 0;
    let paused = 0;
    for (const [start, end] of this.pauses) paused += Math.max(0, Math.min(end, now) - Math.max(start, from));
    return Math.min(1, paused / span);
  }

  private switchTo(
    to: ActiveMode,
    at: number,
    reason: ModeSwitchReason,
    divergences: number,
    pausedShare: number,
  ): ModeSwitch {
    const from = this.current;
    this.timeIn[from] += Math.max(0, at - this.since);
    this.current = to;
    this.since = at;
    this.divergenceCheckpoints.length = 0;
    this.background.length = 0;
    const change: ModeSwitch = { at, from, to, reason, divergences, pausedShare: Math.round(pausedShare * 1e4) / 1e4 };
    this.switchList.push(change);
    this.switchTotal++;
    if (this.switchList.length > this.keepSwitches) this.switchList.shift();
    return change;
  }
}

/** Removes the leading (oldest) times before `from`. */
function dropBefore(times: number[], from: number): void {
  let n = 0;
  while (n < times.length && times[n] < from) n++;
  if (n > 0) times.splice(0, n);
}
