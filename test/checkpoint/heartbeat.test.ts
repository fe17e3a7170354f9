import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from '../../src/checkpoint/heartbeat.js';
import { nextTurn } from './protocol-time.js';

/** A heartbeat whose interval and clock are fake: the test moves time. Its silence check (setImmediate) is real. */
function watched(options: { intervalMs: number; lossTimeoutMs: number }) {
  let heard = 0;
  const sent: number[] = [];
  const losses: number[] = [];
  const heartbeat = new Heartbeat({
    ...options,
    send: () => sent.push(Date.now()),
    lastHeard: () => heard,
    onLoss: (silentMs) => losses.push(silentMs),
    now: () => Date.now(),
  });
  return { heartbeat, sent, losses, hear: () => (heard = Date.now()) };
}

describe('Heartbeat', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0, toFake: ['setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends one heartbeat per interval while running, and none after stop()', () => {
    const h = watched({ intervalMs: 40, lossTimeoutMs: 1000 });
    h.heartbeat.start();
    h.heartbeat.start(); // a second start is no second timer
    vi.advanceTimersByTime(120);
    expect(h.sent).toEqual([40, 80, 120]);
    h.heartbeat.stop();
    expect(h.heartbeat.running).toBe(false);
    vi.advanceTimersByTime(400);
    expect(h.sent).toHaveLength(3);
  });

  it('reports a silence longer than the bound at the first tick after it, once, and stops', async () => {
    const h = watched({ intervalMs: 40, lossTimeoutMs: 200 });
    h.heartbeat.start();
    vi.advanceTimersByTime(200);
    await nextTurn();
    expect(h.losses).toEqual([]);
    vi.advanceTimersByTime(40);
    await nextTurn();
    expect(h.losses).toEqual([240]);
    expect(h.heartbeat.running).toBe(false);
    vi.advanceTimersByTime(1000);
    await nextTurn();
    expect(h.losses).toEqual([240]);
  });

  it('any sign of life from the peer resets the silence', async () => {
    const h = watched({ intervalMs: 40, lossTimeoutMs: 200 });
    h.heartbeat.start();
    for (let t = 0; t < 2000; t += 160) {
      vi.advanceTimersByTime(160);
      await nextTurn();
      h.hear();
    }
    expect(h.losses).toEqual([]);
    vi.advanceTimersByTime(240);
    await nextTurn();
    expect(h.losses).toEqual([240]);
  });

  it('judges silence only after I/O had its turn: bytes that arrive behind a late tick still count', async () => {
    const h = watched({ intervalMs: 40, lossTimeoutMs: 200 });
    h.heartbeat.start();
    vi.advanceTimersByTime(160);
    await nextTurn();
    // The process stalled: the ticks at 200 and 240 run together, their checks wait for the next turn.
    vi.advanceTimersByTime(80);
    expect(h.sent.slice(-2)).toEqual([200, 240]);
    h.hear(); // what the poll phase delivers before those checks
    await nextTurn();
    expect(h.losses).toEqual([]);
  });
});
