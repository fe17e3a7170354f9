import { describe, expect, it } from 'vitest';
import {
  defaultModeThresholds,
  ModeController,
  validateThresholds,
  type ModeThresholds,
} from '../../compare/protection-mode.js';

const t: ModeThresholds = {
  periodMs: 100,
  windowMs: 1000,
  maxDivergenceCheckpoints: 3,
  maxPausedShare: 0.5,
  calmMs: 2000,
  calmDivergences: 2,
};

describe('ModeController', () => {
  it('compare and periodic never switch, whatever happens', () => {
    for (const mode of ['compare', 'periodic'] as const) {
      const c = new ModeController(mode, t);
      for (let at = 0; at < 5000; at += 10) {
        expect(c.divergenceCheckpoint(at)).toBeNull();
        expect(c.paused(at, at + 10)).toBeNull();
        c.backgroundDivergence(at);
      }
      expect(c.active()).toBe(mode);
      expect(c.switches()).toHaveLength(0);
      // Nothing is kept for judgements that never come: a long run in either mode does not grow.
      expect(c.retained()).toBe(0);
    }
  });

  it('hybrid keeps only what its windows still cover', () => {
    const c = new ModeController('hybrid', t);
    for (let at = 0; at < 100_000; at += 200) c.paused(at, at + 10);
    expect(c.active()).toBe('compare');
    expect(c.retained()).toBeLessThanOrEqual(t.windowMs / 200 + 1);
  });

  it('hybrid switches to periodic on the checkpoint that makes more than N within W', () => {
    const c = new ModeController('hybrid', t);
    expect(c.divergenceCheckpoint(0)).toBeNull();
    expect(c.divergenceCheckpoint(300)).toBeNull();
    expect(c.divergenceCheckpoint(600)).toBeNull();
    const change = c.divergenceCheckpoint(900);
    expect(change).toMatchObject({
      at: 900,
      from: 'compare',
      to: 'periodic',
      reason: 'divergence-rate',
      divergences: 4,
    });
    expect(c.active()).toBe('periodic');
  });

  it('hybrid does not switch when the same checkpoints are spread wider than W', () => {
    const c = new ModeController('hybrid', t);
    for (let at = 0; at < 10_000; at += 400) expect(c.divergenceCheckpoint(at)).toBeNull();
    expect(c.active()).toBe('compare');
  });

  it('hybrid switches to periodic when more than the bound of the window is paused', () => {
    const c = new ModeController('hybrid', { ...t, maxDivergenceCheckpoints: 1000 });
    // Over [100, 1100]: 200 + 300 + 300 ms paused; judged only once a whole window of comparing has passed.
    expect(c.paused(0, 300)).toBeNull();
    expect(c.paused(400, 700)).toBeNull();
    const change = c.paused(800, 1100);
    expect(change).toMatchObject({ to: 'periodic', reason: 'paused-share' });
    expect(change?.pausedShare).toBeCloseTo(0.8, 5);
  });

  it('hybrid goes back to compare after Q ms with fewer than M background divergences, not before', () => {
    const c = new ModeController('hybrid', t);
    for (const at of [0, 1, 2, 3]) c.divergenceCheckpoint(at);
    expect(c.active()).toBe('periodic');
    c.backgroundDivergence(500);
    expect(c.evaluate(1999)).toBeNull();
    // Q has passed and one divergence (< M = 2) in the last Q: calm.
    expect(c.evaluate(2003)).toMatchObject({ from: 'periodic', to: 'compare', reason: 'calm', divergences: 1 });
    expect(c.timeInModes(3003)).toEqual({ compare: 3 + 1000, periodic: 2000 });
  });

  it('hybrid stays periodic while the background comparison keeps diverging', () => {
    const c = new ModeController('hybrid', t);
    for (const at of [0, 1, 2, 3]) c.divergenceCheckpoint(at);
    for (let at = 100; at < 10_000; at += 100) {
      c.backgroundDivergence(at);
      expect(c.evaluate(at)).toBeNull();
    }
    expect(c.active()).toBe('periodic');
  });

  it('refuses a bad threshold naming it and the value', () => {
    expect(() => validateThresholds({ ...defaultModeThresholds, periodMs: 0 })).toThrow(
      'periodMs: expected a number > 0, received 0',
    );
    expect(() => new ModeController('hybrid', { ...t, maxPausedShare: 1.5 })).toThrow('maxPausedShare');
  });

  it('keeps only the latest keepSwitches switches while counting every one (a long-running proxy that flaps)', () => {
    const c = new ModeController('hybrid', t, 0, 2);
    let at = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i <= t.maxDivergenceCheckpoints; i++) c.divergenceCheckpoint((at += 10));
      expect(c.active()).toBe('periodic');
      at += t.calmMs;
      expect(c.evaluate(at)).toMatchObject({ to: 'compare', reason: 'calm' });
    }
    expect(c.switchCount()).toBe(10);
    expect(c.switches()).toHaveLength(2);
    expect(c.switches().map((s) => s.at)).toEqual([at - t.calmMs, at]);
  });
});
