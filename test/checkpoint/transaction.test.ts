import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckpointReport } from '../../src/checkpoint/engine.js';
import { fastTimeouts, protectedPair, withTimeout, type Pair } from './harness.js';

let pair: Pair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

describe('a checkpoint transaction over loopback TCP', () => {
  for (const agentListens of [false, true]) {
    it(`seeds the secondary at connect, then copies the primary's state (${agentListens ? 'agent' : 'coordinator'} listening)`, async () => {
      pair = await protectedPair({ agentListens });
      const { coordinator, primary, secondary } = pair;
      // Initial sync: the secondary was seeded with a full state before READY.
      expect(secondary.loaded.map(String)).toEqual(['primary state']);
      expect(coordinator.isProtected).toBe(true);

      primary.state = Buffer.from('state after the divergence');
      const reported = once(coordinator, 'checkpoint') as Promise<[CheckpointReport]>;
      const outcome = await coordinator.checkpoint('payload');
      // Resolved at LOADED: the primary has not resumed yet, so a synchronous flush here precedes its output.
      const callsAtLoaded = [...primary.calls];

      expect(outcome.ok).toBe(true);
      expect(outcome.reason).toBe('payload');
      if (!outcome.ok) return;
      expect(outcome.stateBytes).toBe(primary.state.length);
      expect(secondary.state.toString()).toBe('state after the divergence');
      for (const phase of ['suspend', 'save', 'transfer', 'load'] as const) {
        expect(outcome.durations[phase]).toBeGreaterThanOrEqual(0);
      }
      expect(callsAtLoaded.slice(-2)).toEqual(['suspend', 'save']);

      const [report] = await withTimeout(reported, 2000, 'checkpoint event');
      expect(report.seeding).toBe(false);
      expect(report.durations.resume).toBeGreaterThanOrEqual(0);
      expect(report.durations.total).toBeGreaterThanOrEqual(report.durations.load as number);
      expect(primary.calls.slice(-3)).toEqual(['suspend', 'save', 'resume']);
      expect(secondary.calls.slice(-3)).toEqual(['suspend', 'load', 'resume']);
      expect(primary.running && secondary.running).toBe(true);
    });
  }

  it('carries an 8 MiB state intact', async () => {
    // Integrity, not timing: a loaded machine may take seconds to touch 8 MiB of fresh memory.
    const timeouts = { ...fastTimeouts, transferMs: 10_000, loadMs: 10_000 };
    pair = await protectedPair({ coordinator: { timeouts }, agent: { timeouts } });
    const state = Buffer.alloc(8 << 20);
    for (let i = 0; i < state.length; i += 4) state.writeUInt32LE((i * 2654435761) >>> 0, i);
    pair.primary.state = state;
    const outcome = await pair.coordinator.checkpoint('timer');
    expect(outcome.ok ? 'ok' : outcome.error.message).toBe('ok');
    expect(pair.secondary.state.equals(state)).toBe(true);
  });

  it('runs many checkpoints back to back on one connection', async () => {
    pair = await protectedPair();
    for (let i = 0; i < 50; i++) {
      pair.primary.state = Buffer.from(`generation ${i}`);
      const outcome = await pair.coordinator.checkpoint('timer');
      expect(outcome.ok).toBe(true);
    }
    expect(pair.secondary.state.toString()).toBe('generation 49');
    expect(pair.secondary.count('load')).toBe(51);
  });

  it('answers "not protected" before the secondary is ready, without touching the VM', async () => {
    const { Coordinator } = await import('../../src/checkpoint/coordinator.js');
    const { FakeDriver } = await import('./fake-driver.js');
    const driver = new FakeDriver();
    const coordinator = new Coordinator({ driver, checkpointTimerMs: null });
    const outcome = await coordinator.checkpoint('payload');
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.error.code).toBe('COLO_CKPT_NOT_PROTECTED');
      expect(outcome.secondaryLost).toBe(false);
    }
    expect(driver.calls).toEqual([]);
    await coordinator.close();
  });
});
