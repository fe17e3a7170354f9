import type { Logger } from './log.js';

/** The levels a rate-limited line can have; summaries are always `warn`. */
export type LimitedLevel = 'info' | 'warn' | 'error';

export interface RateLimitOptions {
  /** Lines of one kind written per window; later ones in the window are only counted. Default 10. */
  burst?: number;
  /** The window (ms), and how often held-back lines are summarised. Default 10 000. */
  windowMs?: number;
  /** Milliseconds, for tests; Date.now by default. */
  clock?: () => number;
}

interface KindCount {
  written: number;
  suppressed: number;
}

/**
 * Log lines about events that come in floods under attack or failure (divergences, rejected frames, bounds
 * reached): at most `burst` lines of each kind per window, and at the end of a window one summary line per
 * kind saying how many lines were held back. The counts in the metrics stay exact; this bounds only the log.
 *
 * A window ends at the first line after it (lazily) or at the summary timer (start()), so the last window of
 * a flood that stopped is reported too. close() writes the pending summary.
 */
export class RateLimitedLog {
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly clock: () => number;
  private readonly kinds = new Map<string, KindCount>();
  private windowStart: number;
  private timer: NodeJS.Timeout | null = null;
  /** Lines held back since this log was made, every kind. */
  suppressedTotal = 0;

  constructor(
    private readonly logger: Pick<Logger, LimitedLevel>,
    options: RateLimitOptions = {},
  ) {
    this.burst = options.burst ?? 10;
    this.windowMs = options.windowMs ?? 10_000;
    this.clock = options.clock ?? Date.now;
    if (!(Number.isInteger(this.burst) && this.burst >= 0)) {
      throw new RangeError(`burst must be a non-negative integer, got ${this.burst}`);
    }
    if (!(Number.isInteger(this.windowMs) && this.windowMs > 0)) {
      throw new RangeError(`windowMs must be a positive integer, got ${this.windowMs}`);
    }
    this.windowStart = this.clock();
  }

  /** Writes `msg` with `fields` unless `kind` already used its burst in this window (then counts it). */
  line(level: LimitedLevel, kind: string, fields: object, msg: string): void {
    const now = this.clock();
    if (now - this.windowStart >= this.windowMs) this.summarise(now);
    let count = this.kinds.get(kind);
    if (count === undefined) {
      count = { written: 0, suppressed: 0 };
      this.kinds.set(kind, count);
    }
    if (count.written < this.burst) {
      count.written++;
      this.logger[level]({ ...fields, kind }, msg);
      return;
    }
    count.suppressed++;
    this.suppressedTotal++;
  }

  /** One `warn` line per kind that had lines held back in the window now ending; starts the next window. */
  summarise(now = this.clock()): void {
    const seconds = Math.max(0, Math.round((now - this.windowStart) / 100) / 10);
    for (const [kind, count] of this.kinds) {
      if (count.suppressed > 0) {
        this.logger.warn(
          { kind, written: count.written, suppressed: count.suppressed, windowMs: now - this.windowStart },
          `${count.suppressed} more "${kind}" lines not written in the last ${seconds} s (at most ${this.burst} per ${this.windowMs / 1000} s; the metrics count every one)`,
        );
      }
    }
    // Kinds are few and fixed by the callers (reasons, sides): forgetting quiet ones keeps the map small anyway.
    this.kinds.clear();
    this.windowStart = now;
  }

  /** Summarises every window on a timer (unref'd: it never keeps the process alive). */
  start(): this {
    if (this.timer === null) {
      this.timer = setInterval(() => this.summarise(), this.windowMs);
      this.timer.unref();
    }
    return this;
  }

  /** Stops the timer and writes what the current window held back. */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.summarise();
  }
}
