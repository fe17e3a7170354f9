import { once } from 'node:events';
import { Duplex, PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../src/checkpoint/agent.js';
import { Coordinator, type CheckpointTimer } from '../../src/checkpoint/coordinator.js';
import type { CheckpointReport, LossEvent } from '../../src/checkpoint/engine.js';
import { deferred, FakeDriver } from './fake-driver.js';
import { heartbeatTimeouts, protectedPair, withTimeout, type Pair } from './harness.js';
import { nextTurn, useProtocolTime } from './protocol-time.js';
import { RawPeer } from './raw-peer.js';

let pair: Pair | null = null;
afterEach(async () => {
  vi.useRealTimers();
  await pair?.close();
  pair = null;
});

/** Two ends of an in-memory connection: what one writes, the other reads (no socket, no kernel). */
function memoryConnection(): [Duplex, Duplex] {
  const toSecondary = new PassThrough();
  const toPrimary = new PassThrough();
  return [
    Duplex.from({ readable: toPrimary, writable: toSecondary }),
    Duplex.from({ readable: toSecondary, writable: toPrimary }),
  ];
}

class FakeTimer implements CheckpointTimer {
  armedMs: number | null = null;
  arms = 0;
  private fire: (() => void) | null = null;
  arm(ms: number, fire: () => void): void {
    this.armedMs = ms;
    this.fire = fire;
    this.arms++;
  }
  disarm(): void {
    this.armedMs = null;
    this.fire = null;
  }
  expire(): void {
    const fire = this.fire;
    this.disarm();
    fire?.();
  }
}

describe('one checkpoint at a time', () => {
  it('coalesces every request made during a checkpoint into exactly one more', async () => {
    pair = await protectedPair();
    const { coordinator, primary } = pair;
    const gate = deferred();
    const saving = deferred();
    primary.gate.save = gate.promise;
    primary.onCall = (hook) => hook === 'save' && saving.resolve();
    const first = coordinator.checkpoint('payload');
    await withTimeout(saving.promise, 2000, 'the first save');
    const second = coordinator.checkpoint('timer');
    const third = coordinator.checkpoint('length');
    const fourth = coordinator.checkpoint('payload');
    expect(third).toBe(second);
    expect(fourth).toBe(second);
    gate.resolve();
    const [a, b] = await Promise.all([first, second]);
    expect(a.ok && b.ok).toBe(true);
    expect(a.reasons).toEqual(['payload']);
    expect(b.reasons).toEqual(['timer', 'length', 'payload']);
    // The seeding checkpoint, the first, and one coalesced: three saves, never two at once.
    expect(primary.count('save')).toBe(3);
    expect(pair.secondary.count('load')).toBe(3);
  });
});

describe('CHKPOINT_TIMER', () => {
  it('is armed at ready with 10000 ms by default, fires a "timer" checkpoint, and re-arms after each one', async () => {
    const timer = new FakeTimer();
    pair = await protectedPair({ coordinator: { checkpointTimerMs: undefined, timer } });
    const { coordinator } = pair;
    expect(timer.armedMs).toBe(10_000);
    const reported = once(coordinator, 'checkpoint') as Promise<[CheckpointReport]>;
    timer.expire();
    const [report] = await withTimeout(reported, 2000, 'timer checkpoint');
    expect(report.ok && report.reason).toBe('timer');
    expect(timer.armedMs).toBe(10_000);
    const armsBefore = timer.arms;
    // A checkpoint asked for by a divergence disarms the timer while it runs and re-arms it after.
    const pending = coordinator.checkpoint('payload');
    expect(timer.armedMs).toBeNull();
    await pending;
    await withTimeout(once(coordinator, 'checkpoint'), 2000, 'checkpoint event');
    expect(timer.armedMs).toBe(10_000);
    expect(timer.arms).toBe(armsBefore + 1);
  });

  it('is never armed when the caller owns the timer (null)', async () => {
    const timer = new FakeTimer();
    pair = await protectedPair({ coordinator: { checkpointTimerMs: null, timer } });
    await pair.coordinator.checkpoint('payload');
    expect(timer.arms).toBe(0);
  });

  it('really fires again and again with the real timer', async () => {
    pair = await protectedPair({ coordinator: { checkpointTimerMs: 30 } });
    const reasons: string[] = [];
    await withTimeout(
      new Promise<void>((resolve) =>
        pair?.coordinator.on('checkpoint', (r) => {
          reasons.push(r.reason);
          if (reasons.length === 3) resolve();
        }),
      ),
      3000,
      'three timer checkpoints',
    );
    expect(reasons).toEqual(['timer', 'timer', 'timer']);
  });
});

describe('driver failures', () => {
  it('a failing save on the primary aborts with ABORT: the secondary resumes and stays protected', async () => {
    pair = await protectedPair();
    const { coordinator, primary, secondary, agent } = pair;
    const aborted = once(agent, 'aborted');
    primary.fail.save = 'disk full';
    const outcome = await coordinator.checkpoint('payload');
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe('COLO_CKPT_DRIVER');
    expect(outcome.error.message).toContain('"save"');
    expect(outcome.error.message).toContain('disk full');
    expect(outcome.secondaryLost).toBe(false);
    await withTimeout(aborted, 2000, 'aborted');
    expect(primary.running && secondary.running).toBe(true);
    expect(coordinator.isProtected).toBe(true);
    delete primary.fail.save;
    expect((await coordinator.checkpoint('payload')).ok).toBe(true);
  });

  for (const agentListens of [false, true]) {
    it(`a failing load drops the secondary, which is re-seeded automatically (${agentListens ? 'agent' : 'coordinator'} listening)`, async () => {
      pair = await protectedPair({ agentListens });
      const { coordinator, primary, secondary, agent } = pair;
      secondary.fail.load = 'corrupt image';
      agent.once('dropped', () => delete secondary.fail.load);
      const lost = once(coordinator, 'secondary-lost') as Promise<[LossEvent]>;
      const dropped = once(agent, 'dropped') as Promise<[LossEvent]>;
      primary.state = Buffer.from('state the secondary failed to load');
      const outcome = await coordinator.checkpoint('payload');
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      expect(outcome.secondaryLost).toBe(true);
      expect(outcome.error.code).toBe('COLO_CKPT_PEER_ERROR');
      expect(outcome.error.message).toContain('LOAD_FAILED');
      expect((await lost)[0].reason).toBe('peer-error');
      expect((await dropped)[0].error.message).toContain('corrupt image');
      expect(primary.running && secondary.running).toBe(true);
      // Re-protection: the link reconnects, the secondary is seeded with the full current state, then READY.
      await withTimeout(once(coordinator, 'ready'), 3000, 'ready again');
      expect(secondary.state.toString()).toBe('state the secondary failed to load');
      expect((await coordinator.checkpoint('payload')).ok).toBe(true);
    });
  }
});

describe('connections', () => {
  it('refuses a second secondary while one is attached', async () => {
    pair = await protectedPair();
    const endpoint = pair.links[0].endpoint as { port: number };
    const intruder = await RawPeer.connect(endpoint.port);
    expect(await intruder.closedWithin(1000)).toBe(true);
    expect(pair.coordinator.isProtected).toBe(true);
    expect((await pair.coordinator.checkpoint('payload')).ok).toBe(true);
  });

  it('the real pair stays protected while idle: heartbeats keep both sides alive', async () => {
    // Protocol time over an in-memory connection: a heartbeat written in one tick is read before the other
    // side's silence check of the same tick (stream delivery precedes setImmediate), so only the protocol decides.
    const time = useProtocolTime({ waits: false });
    const coordinator = new Coordinator({
      driver: new FakeDriver(Buffer.from('primary state')),
      timeouts: heartbeatTimeouts,
      checkpointTimerMs: null,
      now: time.now,
    });
    const agent = new Agent({ driver: new FakeDriver(), timeouts: heartbeatTimeouts, now: time.now });
    const [primaryEnd, secondaryEnd] = memoryConnection();
    const ready = once(coordinator, 'ready');
    coordinator.attach(primaryEnd);
    const served = agent.serve(secondaryEnd);
    try {
      await withTimeout(ready, 3000, 'ready');
      const losses: string[] = [];
      coordinator.on('secondary-lost', (e) => losses.push(e.reason));
      agent.on('primary-lost', (e) => losses.push(e.reason));
      const { heartbeatIntervalMs, heartbeatLossMs } = heartbeatTimeouts;
      for (let idle = 0; idle < 3 * heartbeatLossMs; idle += heartbeatIntervalMs) {
        time.advance(heartbeatIntervalMs);
        await nextTurn();
      }
      expect(losses).toEqual([]);
      expect((await coordinator.checkpoint('payload')).ok).toBe(true);
    } finally {
      await coordinator.close();
      await agent.close();
      await withTimeout(served, 2000, 'the agent to end');
    }
  });
});

describe('metrics', () => {
  it('feeds every checkpoint phase into colo_checkpoint_phase_seconds and the outcome counter', async () => {
    const { ColoMetrics } = await import('../../src/stats/metrics.js');
    const { recordCheckpointMetrics } = await import('../../src/checkpoint/metrics.js');
    pair = await protectedPair();
    const metrics = new ColoMetrics();
    recordCheckpointMetrics(pair.coordinator, metrics);
    const reported = once(pair.coordinator, 'checkpoint');
    await pair.coordinator.checkpoint('payload');
    await withTimeout(reported, 2000, 'checkpoint event');
    pair.primary.fail.save = 'disk full';
    const aborted = once(pair.coordinator, 'checkpoint');
    await pair.coordinator.checkpoint('payload');
    await withTimeout(aborted, 2000, 'aborted checkpoint event');
    const text = await metrics.registry.metrics();
    for (const phase of ['suspend', 'save', 'transfer', 'load', 'total']) {
      expect(text).toMatch(new RegExp(`colo_checkpoint_phase_seconds_count\\{phase="${phase}"\\} [12]`));
    }
    expect(text).toMatch(/colo_checkpoints_total\{outcome="ok"\} 1/);
    expect(text).toMatch(/colo_checkpoints_total\{outcome="aborted"\} 1/);
  });
});
