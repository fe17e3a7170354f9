import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Agent, type AgentEnd } from '../../src/checkpoint/agent.js';
import { Coordinator } from '../../src/checkpoint/coordinator.js';
import type { LossEvent } from '../../src/checkpoint/engine.js';
import { SyncPoint } from '../../src/checkpoint/syncpoint.js';
import { listenControl, connectControl, parseEndpoint, type ControlListener } from '../../src/checkpoint/transport.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, withTimeout } from './harness.js';
import { nextTurn, useProtocolTime, type ProtocolTime } from './protocol-time.js';
import { RawPeer } from './raw-peer.js';

/**
 * A fault at each of the six sync points, played by a scripted raw-socket peer that speaks only the seed
 * values. Points the secondary sends (READY, SUSPENDED, RECEIVED, LOADED) are faulted against the real
 * Coordinator; points the primary sends (NEW, SEND) against the real Agent. The protocol's waits run on
 * protocol time (test/checkpoint/protocol-time.ts): a stall is time moved past the bound, a slow answer one
 * sent after a quarter of it, and neither depends on how busy the machine is.
 */
type Fault = 'stall' | 'close' | 'garbage' | 'slow';
type Point = 'READY' | 'NEW' | 'SUSPENDED' | 'SEND' | 'RECEIVED' | 'LOADED';
const value: Record<Point, number> = SyncPoint;
const GARBAGE = Buffer.from('deadbeef00000001', 'hex');

/** What each fault must lead to. For the agent, a silent primary at NEW is just an idle primary. */
const expected: Record<Point, Record<Fault, string>> = {
  READY: { stall: 'lost:timeout', close: 'lost:closed', garbage: 'lost:garbage', slow: 'ok' },
  SUSPENDED: { stall: 'lost:timeout', close: 'lost:closed', garbage: 'lost:garbage', slow: 'ok' },
  RECEIVED: { stall: 'lost:timeout', close: 'lost:closed', garbage: 'lost:garbage', slow: 'ok' },
  LOADED: { stall: 'lost:timeout', close: 'lost:closed', garbage: 'lost:garbage', slow: 'ok' },
  NEW: { stall: 'idle', close: 'primary-lost:closed', garbage: 'dropped:garbage', slow: 'ok' },
  SEND: { stall: 'primary-lost:timeout', close: 'primary-lost:closed', garbage: 'dropped:garbage', slow: 'ok' },
};

/** The wait that guards each point on the side under test, so "slow" stays within it. */
const bound: Record<Point, number> = {
  READY: fastTimeouts.loadMs,
  SUSPENDED: fastTimeouts.waitMs,
  RECEIVED: fastTimeouts.transferMs,
  LOADED: fastTimeouts.loadMs,
  NEW: fastTimeouts.transferMs,
  SEND: fastTimeouts.transferMs,
};

let time: ProtocolTime;

/** Plays `point`: sends it normally unless it is the faulted one. Returns false when the script must stop. */
async function play(peer: RawPeer, point: Point, faulted: Point, fault: Fault, send: () => void): Promise<boolean> {
  if (point !== faulted) {
    send();
    return true;
  }
  switch (fault) {
    case 'stall':
      return false;
    case 'close':
      peer.close();
      return false;
    case 'garbage':
      peer.sendRaw(GARBAGE);
      return false;
    case 'slow':
      time.advance(bound[point] / 4);
      send();
      return true;
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  time = useProtocolTime({ waits: true });
});
afterEach(async () => {
  vi.useRealTimers();
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function coordinatorCase(point: Point, fault: Fault): Promise<void> {
  const primary = new FakeDriver(Buffer.from('primary state'));
  const coordinator = new Coordinator({ driver: primary, timeouts: fastTimeouts, checkpointTimerMs: null });
  const listener: ControlListener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), null);
  listener.on('connection', (stream, peer) => coordinator.attach(stream, peer));
  cleanup.push(
    () => listener.close(),
    () => coordinator.close(),
  );
  const losses: LossEvent[] = [];
  coordinator.on('secondary-lost', (event) => losses.push(event));
  const lost = once(coordinator, 'secondary-lost');
  const ready = once(coordinator, 'ready');
  const peer = await RawPeer.connect((listener.address as { port: number }).port);
  cleanup.push(() => peer.close());

  // A seed-only secondary: READY first, then the seeding checkpoint the coordinator runs at once.
  if (!(await play(peer, 'READY', point, fault, () => peer.send(value.READY)))) {
    await (fault === 'stall'
      ? time.advanceUntil(lost, 10, 4 * bound.READY)
      : withTimeout(lost, 2000, 'secondary-lost'));
    expect(`lost:${losses[0].reason}`).toBe(expected[point][fault]);
    expect(losses[0].wasProtected).toBe(false);
    expect(coordinator.isProtected).toBe(false);
    expect(primary.calls).toEqual([]);
    return;
  }
  const transaction = async (): Promise<boolean> => {
    expect(await peer.readWord()).toBe(0x47n);
    if (!(await play(peer, 'SUSPENDED', point, fault, () => peer.send(value.SUSPENDED)))) return false;
    const header = await peer.readWord();
    expect(header).toBe(0x49n);
    const state = await peer.readState();
    expect(state.toString()).toBe(primary.state.toString());
    if (!(await play(peer, 'RECEIVED', point, fault, () => peer.send(value.RECEIVED)))) return false;
    return play(peer, 'LOADED', point, fault, () => peer.send(value.LOADED));
  };
  // The seeding checkpoint runs clean; the fault is injected into the first checkpoint after READY.
  const seeding = { point };
  point = 'READY';
  expect(await transaction()).toBe(true);
  point = seeding.point;
  await withTimeout(ready, 2000, 'ready');

  primary.state = Buffer.from('newer primary state');
  const callsBefore = primary.calls.length;
  const checkpoint = coordinator.checkpoint('payload');
  const scripted = await transaction().catch(() => false);
  const outcome = await (fault === 'stall' && !scripted
    ? time.advanceUntil(checkpoint, 10, 4 * bound[point])
    : withTimeout(checkpoint, 2000, 'the checkpoint outcome'));
  if (expected[point][fault] === 'ok') {
    expect(scripted).toBe(true);
    expect(outcome.ok).toBe(true);
    expect(losses).toEqual([]);
    expect(coordinator.isProtected).toBe(true);
    return;
  }
  expect(outcome.ok).toBe(false);
  if (outcome.ok) return;
  expect(outcome.secondaryLost).toBe(true);
  await withTimeout(lost, 2000, 'secondary-lost');
  expect(`lost:${losses[0].reason}`).toBe(expected[point][fault]);
  expect(outcome.error.reason).toBe(losses[0].reason);
  expect(losses[0].wasProtected).toBe(true);
  expect(coordinator.isProtected).toBe(false);
  // Aborted: a primary that never suspended stays untouched; one that did is running again.
  const during = primary.calls.slice(callsBefore);
  expect(during).toEqual(point === 'SUSPENDED' ? [] : ['suspend', 'save', 'resume']);
  expect(primary.running).toBe(true);
  // The coordinator hung up on the faulty secondary.
  expect(await peer.closedWithin(1000)).toBe(true);
}

async function agentCase(point: Point, fault: Fault): Promise<void> {
  const secondary = new FakeDriver(Buffer.from('secondary state'));
  const agent = new Agent({ driver: secondary, timeouts: fastTimeouts, extensions: false });
  cleanup.push(() => agent.close());
  const { port, accepted, server } = await RawPeer.listen();
  cleanup.push(() => void server.close());
  const stream = await connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), null, 1000);
  const ended = agent.serve(stream);
  const peer = await accepted;
  cleanup.push(() => peer.close());
  const outcome: string[] = [];
  agent.on('primary-lost', (e) => outcome.push(`primary-lost:${e.reason}`));
  agent.on('dropped', (e) => outcome.push(`dropped:${e.reason}`));
  const checkpointed = once(agent, 'checkpoint');

  // A seed-only agent opens with READY and never sends an extension.
  expect(await peer.readWord()).toBe(0x46n);
  const want = expected[point][fault];
  const newSent = await play(peer, 'NEW', point, fault, () => peer.send(value.NEW));
  if (!newSent && want === 'idle') {
    // Silence before NEW is an idle primary: no loss, and a later NEW is served normally.
    time.advance(bound.NEW * 2);
    await nextTurn();
    expect(outcome).toEqual([]);
    expect(agent.busy).toBe(true);
    peer.send(value.NEW);
  } else if (!newSent) {
    const end: AgentEnd = await withTimeout(ended, 2000, 'the agent to end');
    expect(outcome).toEqual([want]);
    expect(end.kind).toBe(want.split(':')[0]);
    expect(secondary.calls).toEqual([]);
    return;
  }
  expect(await peer.readWord()).toBe(0x48n);
  expect(secondary.running).toBe(false);
  const state = Buffer.from('the primary state');
  const sent = await play(peer, 'SEND', point, fault, () => peer.sendState(state));
  if (sent) {
    expect(await peer.readWord()).toBe(0x4an);
    expect(await peer.readWord()).toBe(0x4bn);
    await withTimeout(checkpointed, 2000, 'agent checkpoint');
    expect(['ok', 'idle']).toContain(want);
    expect(secondary.state.toString()).toBe('the primary state');
    expect(secondary.calls).toEqual(['suspend', 'load', 'resume']);
    expect(outcome).toEqual([]);
    return;
  }
  const end = await (fault === 'stall'
    ? time.advanceUntil(ended, 10, 4 * bound.SEND)
    : withTimeout(ended, 2000, 'the agent to end'));
  expect(outcome).toEqual([want]);
  expect(end.kind).toBe(want.split(':')[0]);
  // The secondary VM runs again (resumed, nothing loaded) whatever became of the primary.
  expect(secondary.calls).toEqual(['suspend', 'resume']);
  expect(secondary.running).toBe(true);
}

describe('faults at every sync point, against a seed-only raw peer', () => {
  const points: Point[] = ['READY', 'NEW', 'SUSPENDED', 'SEND', 'RECEIVED', 'LOADED'];
  const faults: Fault[] = ['stall', 'close', 'garbage', 'slow'];
  for (const point of points) {
    for (const fault of faults) {
      it(`${point} × ${fault} → ${expected[point][fault]}`, async () => {
        if (point === 'NEW' || point === 'SEND') await agentCase(point, fault);
        else await coordinatorCase(point, fault);
      });
    }
  }
});
