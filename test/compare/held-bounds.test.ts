/**
 * Hard bounds on what the engine holds (issue 17, finding 3): primary frames with no secondary twin and no
 * checkpoint ever coming (a silent notify peer) must not grow without limit. At a bound the engine flushes
 * unprotected: held primaries are released in order, uncompared, held secondaries dropped, all counted.
 */
import { describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import { Harness, udp } from './support.js';

function untwinned(i: number): Buffer {
  return udp(`frame ${i}`, { srcPort: 1024 + (i % 7) });
}

describe('held-frame bounds', () => {
  it('60,000 untwinned primary frames, never a checkpoint: the defaults keep the engine within 32,768 held', () => {
    const h = new Harness();
    let most = 0;
    for (let i = 0; i < 60_000; i++) {
      h.primary(untwinned(i));
      most = Math.max(most, h.engine.stats().heldPrimaryPackets);
    }
    const stats = h.engine.stats();
    expect(most).toBeLessThanOrEqual(32_768);
    expect(stats.heldBoundFlushes['primary-frames']).toBe(1);
    expect(stats.heldBoundReleased).toBe(32_769);
    expect(h.released.length + stats.heldPrimaryPackets).toBe(60_000);
  });

  it('releases the held primaries in the order they were pushed, per connection', () => {
    const h = new Harness({ maxHeldFramesPerSide: 50 });
    const frames = Array.from({ length: 51 }, (_, i) => udp(`f${i}`));
    for (const frame of frames) h.primary(frame);
    expect(h.releasedFrames).toEqual(frames);
    expect(h.engine.stats()).toMatchObject({ heldPrimaryPackets: 0, heldBoundReleased: 51, flushes: 0 });
  });

  it('bounds bytes per side', () => {
    const h = new Harness({ maxHeldBytesPerSide: 10_000 });
    const big = Buffer.alloc(1000, 7);
    let most = 0;
    for (let i = 0; i < 100; i++) {
      h.primary(udp(big, { srcPort: 1000 + i }));
      most = Math.max(most, h.engine.stats().heldPrimaryBytes);
    }
    expect(most).toBeLessThanOrEqual(10_000);
    expect(h.engine.stats().heldBoundFlushes['primary-bytes']).toBeGreaterThan(0);
  });

  it('bounds the secondary: untwinned secondary frames are dropped at the bound, counted', () => {
    const h = new Harness({ maxHeldFramesPerSide: 100 });
    for (let i = 0; i < 1000; i++) h.secondary(untwinned(i));
    const stats = h.engine.stats();
    expect(stats.heldSecondaryPackets).toBeLessThanOrEqual(100);
    expect(stats.heldBoundFlushes['secondary-frames']).toBeGreaterThan(0);
    expect(stats.heldBoundDropped + stats.heldSecondaryPackets).toBe(1000);
  });

  it('bounds both sides together', () => {
    const h = new Harness({ maxHeldFrames: 150 });
    for (let i = 0; i < 100; i++) h.primary(udp(`p${i}`, { srcPort: 1 }));
    for (let i = 0; i < 100; i++) h.secondary(udp(`s${i}`, { srcPort: 2 }));
    const stats = h.engine.stats();
    expect(stats.heldPrimaryPackets + stats.heldSecondaryPackets).toBeLessThanOrEqual(150);
    expect(stats.heldBoundFlushes['total-frames']).toBe(1);
    expect(h.released).toHaveLength(100);
  });

  it('refuses a bound that is not a positive integer, naming it', () => {
    expect(() => new CompareEngine({ maxHeldBytes: 0 })).toThrow(/maxHeldBytes must be a positive integer, got 0/);
  });
});
