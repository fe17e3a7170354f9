import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../src/checkpoint/agent.js';
import { Coordinator } from '../../src/checkpoint/coordinator.js';
import type { LossEvent } from '../../src/checkpoint/engine.js';
import { connectControl, listenControl, parseEndpoint } from '../../src/checkpoint/transport.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, heartbeatTimeouts, withTimeout } from './harness.js';
import { useProtocolTime } from './protocol-time.js';
import { RawPeer, u64 } from './raw-peer.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** The words of a byte stream, as hex strings, with a state after SEND kept whole. */
function words(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i < bytes.length;) {
    const word = bytes.readBigUInt64BE(i);
    out.push(bytes.subarray(i, i + 8).toString('hex'));
    i += 8;
    if (word === 0x49n) {
      const length = Number(bytes.readBigUInt64BE(i));
      out.push(bytes.subarray(i, i + 8).toString('hex'), bytes.subarray(i + 8, i + 8 + length).toString());
      i += 8 + length;
    }
  }
  return out;
}

async function coordinatorWithRawSecondary(now?: () => number): Promise<{
  coordinator: Coordinator;
  primary: FakeDriver;
  peer: RawPeer;
}> {
  const primary = new FakeDriver(Buffer.from('p0'));
  const coordinator = new Coordinator({ driver: primary, timeouts: heartbeatTimeouts, checkpointTimerMs: null, now });
  const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), null);
  listener.on('connection', (stream, peer) => coordinator.attach(stream, peer));
  cleanup.push(
    () => listener.close(),
    () => coordinator.close(),
  );
  const peer = await RawPeer.connect((listener.address as { port: number }).port);
  cleanup.push(() => peer.close());
  return { coordinator, primary, peer };
}

/** The secondary's half of one transaction, as a script; returns the state it received. */
async function serveOne(peer: RawPeer): Promise<Buffer> {
  expect(await peer.readWord()).toBe(0x47n);
  peer.send(0x48);
  expect(await peer.readWord()).toBe(0x49n);
  const state = await peer.readState();
  peer.send(0x4a, 0x4b);
  return state;
}

describe('the wire, byte for byte, with a seed-only secondary', () => {
  it('exchanges exactly the seed words and never sends an extension or a heartbeat', async () => {
    const time = useProtocolTime({ waits: false });
    const { coordinator, primary, peer } = await coordinatorWithRawSecondary(time.now);
    const ready = once(coordinator, 'ready');
    peer.send(0x46);
    expect((await serveOne(peer)).toString()).toBe('p0');
    await withTimeout(ready, 2000, 'ready');
    for (const state of ['p1', 'p2']) {
      // Idle for several heartbeat intervals first: a seed-only peer is sent nothing, so the checkpoint's
      // NEW (written after any heartbeat would have been) is the next word on the wire.
      time.advance(heartbeatTimeouts.heartbeatIntervalMs * 5);
      primary.state = Buffer.from(state);
      const [outcome] = await Promise.all([coordinator.checkpoint('payload'), serveOne(peer)]);
      expect(outcome.ok).toBe(true);
    }
    expect(coordinator.isProtected).toBe(true);
    expect(words(Buffer.concat(peer.received))).toEqual([
      '0000000000000047', // NEW (seeding)
      '0000000000000049', // SEND
      '0000000000000002', // u64 length
      'p0',
      '0000000000000047', // NEW
      '0000000000000049',
      '0000000000000002',
      'p1',
      '0000000000000047',
      '0000000000000049',
      '0000000000000002',
      'p2',
    ]);
  });

  it('names the expected and the received sync point on an unexpected message', async () => {
    const { coordinator, peer } = await coordinatorWithRawSecondary();
    const ready = once(coordinator, 'ready');
    peer.send(0x46);
    await serveOne(peer);
    await withTimeout(ready, 2000, 'ready');
    const pending = coordinator.checkpoint('payload');
    expect(await peer.readWord()).toBe(0x47n);
    peer.send(0x4b); // LOADED where SUSPENDED belongs
    const outcome = await pending;
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe('COLO_CKPT_UNEXPECTED');
    expect(outcome.error.message).toBe('expected SUSPENDED (0x48), received LOADED (0x4b)');
    expect(outcome.secondaryLost).toBe(true);
  });

  it('a seed-only agent answers a raw primary with exactly READY, SUSPENDED, RECEIVED, LOADED', async () => {
    const time = useProtocolTime({ waits: false });
    const secondary = new FakeDriver();
    const agent = new Agent({ driver: secondary, timeouts: fastTimeouts, extensions: false, now: time.now });
    cleanup.push(() => agent.close());
    const { port, accepted, server } = await RawPeer.listen();
    cleanup.push(() => void server.close());
    void agent.serve(await connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), null, 1000));
    const peer = await accepted;
    cleanup.push(() => peer.close());
    expect(await peer.readWord()).toBe(0x46n);
    for (const state of ['s1', 's2', 's3']) {
      // Idle for several heartbeat intervals between checkpoints: a heartbeat would come before SUSPENDED.
      if (state !== 's1') time.advance(fastTimeouts.heartbeatIntervalMs * 5);
      peer.send(0x47);
      expect(await peer.readWord()).toBe(0x48n);
      peer.sendState(Buffer.from(state));
      expect(await peer.readWord()).toBe(0x4an);
      expect(await peer.readWord()).toBe(0x4bn);
    }
    expect(words(Buffer.concat(peer.received))).toEqual([
      '0000000000000046',
      '0000000000000048',
      '000000000000004a',
      '000000000000004b',
      '0000000000000048',
      '000000000000004a',
      '000000000000004b',
      '0000000000000048',
      '000000000000004a',
      '000000000000004b',
    ]);
    expect(secondary.state.toString()).toBe('s3');
  });
});

describe('extensions: HELLO, heartbeat, ERROR', () => {
  /** An extension-speaking raw secondary: HELLO, the seeding checkpoint, READY. */
  async function extSecondary(now?: () => number): Promise<{ coordinator: Coordinator; peer: RawPeer }> {
    const { coordinator, peer } = await coordinatorWithRawSecondary(now);
    const ready = once(coordinator, 'ready');
    peer.send(0x100, 1);
    expect(await peer.readWord()).toBe(0x100n);
    expect(await peer.readWord()).toBe(1n);
    // Heartbeats may now arrive between messages: drop them while scripting.
    const readSkippingHeartbeats = async (): Promise<bigint> => {
      for (;;) {
        const word = await peer.readWord();
        if (word !== 0x101n) return word;
      }
    };
    expect(await readSkippingHeartbeats()).toBe(0x47n);
    peer.send(0x48);
    expect(await readSkippingHeartbeats()).toBe(0x49n);
    await peer.readState();
    peer.send(0x4a, 0x4b, 0x46);
    await withTimeout(ready, 2000, 'ready');
    return { coordinator, peer };
  }

  it('the coordinator drops a secondary that stops heartbeating, telling it so with ERROR', async () => {
    const time = useProtocolTime({ waits: false });
    const { coordinator, peer } = await extSecondary(time.now);
    const silence = once(coordinator, 'secondary-lost') as Promise<[LossEvent]>;
    const { heartbeatIntervalMs, heartbeatLossMs } = heartbeatTimeouts;
    const [lost] = await time.advanceUntil(silence, heartbeatIntervalMs, 10 * heartbeatLossMs);
    // Lost at the first heartbeat tick after the bound: silence of more than heartbeatLossMs, within one interval.
    expect(time.now()).toBeGreaterThan(heartbeatLossMs);
    expect(time.now()).toBeLessThanOrEqual(heartbeatLossMs + heartbeatIntervalMs);
    expect(lost.reason).toBe('heartbeat');
    expect(lost.wasProtected).toBe(true);
    expect(coordinator.isProtected).toBe(false);
    expect(await peer.closedWithin(1000)).toBe(true);
    const all = Buffer.concat(peer.received);
    // It heartbeated while idle, and its last words are ERROR TIMEOUT.
    expect(all.includes(u64(0x101))).toBe(true);
    expect(all.subarray(-16).toString('hex')).toBe('0000000000000102' + '0000000000000003');
  });

  it('the agent reports primary-lost on heartbeat silence and resumes its suspended VM', async () => {
    const secondary = new FakeDriver();
    // A long transfer bound: only the heartbeat can end this wait in time.
    const time = useProtocolTime({ waits: false });
    const agent = new Agent({
      driver: secondary,
      timeouts: { ...heartbeatTimeouts, transferMs: 10_000 },
      now: time.now,
    });
    cleanup.push(() => agent.close());
    const { port, accepted, server } = await RawPeer.listen();
    cleanup.push(() => void server.close());
    const ended = agent.serve(await connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), null, 1000));
    const lost = once(agent, 'primary-lost') as Promise<[LossEvent]>;
    const peer = await accepted;
    cleanup.push(() => peer.close());
    expect(await peer.readWord()).toBe(0x100n);
    expect(await peer.readWord()).toBe(1n);
    peer.send(0x100, 1, 0x47);
    expect(await peer.readWord()).toBe(0x48n);
    peer.sendState(Buffer.from('seed'));
    // The raw primary keeps quiet from here on; the agent heartbeats and finishes the seeding.
    const seen: bigint[] = [];
    while (seen.filter((w) => w !== 0x101n).length < 3) seen.push(await peer.readWord());
    expect(seen.filter((w) => w !== 0x101n)).toEqual([0x4an, 0x4bn, 0x46n]);
    peer.send(0x47); // a checkpoint begins, then the primary falls silent
    const [event] = await time.advanceUntil(lost, heartbeatTimeouts.heartbeatIntervalMs, 5000);
    expect(event.reason).toBe('heartbeat');
    expect((await ended).kind).toBe('primary-lost');
    expect(secondary.calls.slice(-2)).toEqual(['suspend', 'resume']);
    expect(secondary.running).toBe(true);
  });

  it('an ERROR from the primary is a deliberate drop, not a primary loss', async () => {
    const secondary = new FakeDriver();
    const agent = new Agent({ driver: secondary, timeouts: fastTimeouts });
    cleanup.push(() => agent.close());
    const { port, accepted, server } = await RawPeer.listen();
    cleanup.push(() => void server.close());
    const ended = agent.serve(await connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), null, 1000));
    const events: string[] = [];
    agent.on('primary-lost', () => events.push('primary-lost'));
    agent.on('dropped', (e) => events.push(`dropped:${e.reason}`));
    const peer = await accepted;
    cleanup.push(() => peer.close());
    await peer.read(16);
    peer.send(0x100, 1, 0x47);
    expect(await peer.readWord()).toBe(0x48n);
    peer.sendState(Buffer.from('seed'));
    peer.send(0x102, 1); // ERROR DROPPING
    peer.close();
    const end = await withTimeout(ended, 2000, 'agent end');
    expect(end.kind).toBe('dropped');
    expect(events).toEqual(['dropped:peer-error']);
  });

  it('refuses a peer announcing another protocol version, saying why', async () => {
    const { coordinator, peer } = await coordinatorWithRawSecondary();
    const lost = once(coordinator, 'secondary-lost') as Promise<[LossEvent]>;
    peer.send(0x100, 2);
    const [event] = await withTimeout(lost, 2000, 'secondary-lost');
    expect(event.error.code).toBe('COLO_CKPT_VERSION');
    expect(await peer.closedWithin(1000)).toBe(true);
    expect(Buffer.concat(peer.received).toString('hex')).toBe('0000000000000102' + '0000000000000008');
  });
});
