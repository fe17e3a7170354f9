import { describe, expect, it } from 'vitest';
import { GuestLag } from '../../src/replay/guest-lag.js';

describe('GuestLag', () => {
  it('delays later frames by a pause and works the delay off in the guests idle share', () => {
    const lag = new GuestLag(0.5);
    expect(lag.frameAt(0)).toBe(0);
    lag.paused(20);
    // Frames of the instant the pause began keep its lag: the two copies of a reply stay together.
    expect(lag.frameAt(0)).toBe(0);
    // 10 ms later: 20 ms of pause, 5 ms of it worked off in the idle half of those 10 ms.
    expect(lag.frameAt(10)).toBe(25);
    expect(lag.frameAt(40)).toBe(40);
  });

  it('grows without bound when pauses take more than the idle share', () => {
    const lag = new GuestLag(0.5);
    let at = 0;
    for (let t = 0; t <= 1000; t += 10) {
      at = lag.frameAt(t);
      lag.paused(8);
    }
    // 80 % paused against 50 % idle: 3 ms more lag every 10 ms.
    expect(at - 1000).toBeCloseTo(300, 5);
  });

  it('refuses a busy share outside [0, 1)', () => {
    expect(() => new GuestLag(1)).toThrow('guestBusyShare: expected a number in [0, 1), received 1');
  });
});
