import { vi } from 'vitest';

/**
 * Protocol time that a test moves instead of waiting for: the checkpoint code's heartbeat intervals (and,
 * with `waits`, its bounded waits: setTimeout) run on vitest's fake timers, and its clock is `now` (pass it
 * as the Coordinator's or Agent's `now` option). setImmediate and I/O stay real, so sockets keep working and
 * the heartbeat still judges silence after the poll phase. The harness's own deadlines (withTimeout, RawPeer)
 * keep real timers: they captured them at import. Undo with vi.useRealTimers() (afterEach).
 */
export interface ProtocolTime {
  now(): number;
  /** Moves the clock and runs every timer due meanwhile, one millisecond at a time. */
  advance(ms: number): void;
  /**
   * Moves time in steps of `stepMs`, letting I/O and the loop run between steps, until `settled` settles:
   * for a wait whose timer may not be armed yet when the test starts moving time. Fails after `maxMs`.
   */
  advanceUntil<T>(settled: Promise<T>, stepMs: number, maxMs: number): Promise<T>;
}

export function useProtocolTime(options: { waits: boolean }): ProtocolTime {
  const faked = ['setInterval', 'clearInterval'] as const;
  vi.useFakeTimers({ toFake: options.waits ? [...faked, 'setTimeout', 'clearTimeout'] : [...faked] });
  let t = 0;
  const advance = (ms: number): void => {
    for (let i = 0; i < ms; i++) {
      t += 1;
      vi.advanceTimersByTime(1);
    }
  };
  return {
    now: () => t,
    advance,
    async advanceUntil<T>(settled: Promise<T>, stepMs: number, maxMs: number): Promise<T> {
      let done = false;
      const result = settled.finally(() => (done = true));
      for (let moved = 0; !done; moved += stepMs) {
        if (moved > maxMs) throw new Error(`nothing settled within ${maxMs} ms of protocol time`);
        advance(stepMs);
        await new Promise((resolve) => setImmediate(resolve));
      }
      return result;
    },
  };
}

/** One turn of the event loop (timers aside): what a real setImmediate queued before now has run. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
