import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent, type AgentCheckpointReport } from '../../src/checkpoint/agent.js';
import type { ReadyEvent } from '../../src/checkpoint/engine.js';
import { linkAgent } from '../../src/checkpoint/link.js';
import { parseEndpoint } from '../../src/checkpoint/transport.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, withTimeout } from './harness.js';
import { useProtocolTime, type ProtocolTime } from './protocol-time.js';
import { RawPeer } from './raw-peer.js';

/**
 * The agent against a primary that knows only the seed's six values, written here from those values alone:
 * the agent must find out on its own (no --seed-only) and from then on send nothing at or above 0x100.
 */

const READY = 0x46n;
const NEW = 0x47n;
const SUSPENDED = 0x48n;
const RECEIVED = 0x4an;
const LOADED = 0x4bn;
const SEED_VALUES = new Set([READY, NEW, SUSPENDED, 0x49n, RECEIVED, LOADED]);

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A listening raw primary, scripted by each test; `nextConnection()` resolves with each accepted connection in turn. */
async function scriptedPrimary(): Promise<{ port: number; nextConnection(): Promise<RawPeer> }> {
  const server = net.createServer();
  const accepted: RawPeer[] = [];
  let wake: (() => void) | null = null;
  server.on('connection', (socket) => {
    const peer = new RawPeer(socket);
    cleanup.push(() => peer.close());
    accepted.push(peer);
    wake?.();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  let taken = 0;
  return {
    port: (server.address() as net.AddressInfo).port,
    async nextConnection() {
      while (accepted.length <= taken) await new Promise<void>((resolve) => (wake = resolve));
      return accepted[taken++];
    },
  };
}

/** One checkpoint as the seed primary runs it: NEW, SUSPENDED, SEND state, RECEIVED, LOADED. */
async function seedCheckpoint(peer: RawPeer, state: string): Promise<void> {
  peer.send(NEW);
  expect(await peer.readWord()).toBe(SUSPENDED);
  peer.sendState(Buffer.from(state));
  expect(await peer.readWord()).toBe(RECEIVED);
  expect(await peer.readWord()).toBe(LOADED);
}

/** Every 8-byte word the agent sent (the agent never sends a state, so its stream is words only). */
function wordsOf(peer: RawPeer): bigint[] {
  const bytes = Buffer.concat(peer.received);
  expect(bytes.length % 8).toBe(0);
  return Array.from({ length: bytes.length / 8 }, (_, i) => bytes.readBigUInt64BE(8 * i));
}

/** An agent dialling `port` with a short backoff, its heartbeats on protocol time; its events are recorded. */
async function dialingAgent(port: number): Promise<{
  agent: Agent;
  secondary: FakeDriver;
  events: string[];
  ready: Promise<ReadyEvent>;
  time: ProtocolTime;
}> {
  const secondary = new FakeDriver();
  const time = useProtocolTime({ waits: false });
  // A short heartbeat interval: if the agent heartbeated, a few idle intervals would show it.
  const agent = new Agent({
    driver: secondary,
    timeouts: { ...fastTimeouts, heartbeatIntervalMs: 10 },
    now: time.now,
  });
  const events: string[] = [];
  agent.on('checkpoint', (r: AgentCheckpointReport) => events.push(`checkpoint:${r.stateBytes}`));
  agent.on('dropped', (e) => events.push(`dropped:${e.reason}`));
  agent.on('primary-lost', (e) => events.push(`primary-lost:${e.reason}`));
  const ready = once(agent, 'ready').then(([event]) => event as ReadyEvent);
  const link = await linkAgent(agent, parseEndpoint(`connect:127.0.0.1:${port}`), { material: null, retryMs: 10 });
  cleanup.push(
    () => link.close(),
    () => agent.close(),
  );
  return { agent, secondary, events, ready, time };
}

/**
 * After READY: two checkpoints with an idle spell between them, then an unexpected value so that the agent
 * drops the connection (a seed peer must not be told why with ERROR either). Returns once it closed.
 */
async function checkpointsThenProvoke(peer: RawPeer, time: ProtocolTime): Promise<void> {
  await seedCheckpoint(peer, 'state-1');
  // Ten heartbeat intervals of idle: a heartbeat would be on the wire before the next SUSPENDED.
  time.advance(100);
  await seedCheckpoint(peer, 'state-two');
  peer.send(LOADED);
  expect(await peer.closedWithin(2000)).toBe(true);
}

describe('the agent finds a seed-only primary on its own', () => {
  it('opens the next connection with READY when the primary closes on HELLO, and sends no extension again', async () => {
    const primary = await scriptedPrimary();
    const { agent, secondary, events, ready, time } = await dialingAgent(primary.port);

    // A strict seed primary: the first word must be READY, anything else ends the connection.
    const first = await primary.nextConnection();
    const opening = await first.readWord();
    expect(opening).toBe(0x100n); // HELLO: the agent announces by default
    first.close();

    const second = await withTimeout(primary.nextConnection(), 3000, 'the agent to redial');
    expect(await second.readWord()).toBe(READY);
    expect((await withTimeout(ready, 2000, 'ready')).extensions).toBe(false);
    expect(agent.announces).toBe(false);
    await checkpointsThenProvoke(second, time);

    expect(wordsOf(second)).toEqual([READY, SUSPENDED, RECEIVED, LOADED, SUSPENDED, RECEIVED, LOADED]);
    expect(wordsOf(second).every((word) => SEED_VALUES.has(word))).toBe(true);
    expect(secondary.state.toString()).toBe('state-two');
    expect(events.slice(0, 3)).toEqual(['dropped:closed', 'checkpoint:7', 'checkpoint:9']);
    // The third connection, after the drop, opens with READY too: the agent remembers.
    const third = await withTimeout(primary.nextConnection(), 3000, 'the agent to redial again');
    expect(await third.readWord()).toBe(READY);
  });

  it('sends READY on the same connection when the primary skips HELLO and stays silent', async () => {
    const primary = await scriptedPrimary();
    const { secondary, events, ready, time } = await dialingAgent(primary.port);
    const peer = await primary.nextConnection();
    // A lenient seed primary: words that are none of the six are skipped while it waits for READY.
    let skipped = 0;
    for (;;) {
      const word = await peer.readWord(3000);
      if (word === READY) break;
      expect(SEED_VALUES.has(word)).toBe(false);
      skipped += 1;
    }
    expect(skipped).toBe(2); // HELLO and its version argument
    expect((await withTimeout(ready, 2000, 'ready')).extensions).toBe(false);
    await checkpointsThenProvoke(peer, time);

    const words = wordsOf(peer);
    expect(words.slice(0, 2)).toEqual([0x100n, 1n]);
    expect(words.slice(2)).toEqual([READY, SUSPENDED, RECEIVED, LOADED, SUSPENDED, RECEIVED, LOADED]);
    expect(secondary.state.toString()).toBe('state-two');
    expect(events.slice(0, 2)).toEqual(['checkpoint:7', 'checkpoint:9']);
  });

  it('takes a NEW in answer to HELLO as the seeding checkpoint, without READY out of turn', async () => {
    const primary = await scriptedPrimary();
    const { secondary, events, ready, time } = await dialingAgent(primary.port);
    const peer = await primary.nextConnection();
    // A seed primary that starts on whatever its peer says first: it reads the opening and begins.
    await peer.read(16);
    await seedCheckpoint(peer, 'seed');
    expect((await withTimeout(ready, 2000, 'ready')).extensions).toBe(false);
    await checkpointsThenProvoke(peer, time);

    const words = wordsOf(peer);
    expect(words.slice(2)).toEqual([
      SUSPENDED,
      RECEIVED,
      LOADED,
      SUSPENDED,
      RECEIVED,
      LOADED,
      SUSPENDED,
      RECEIVED,
      LOADED,
    ]);
    expect(secondary.state.toString()).toBe('state-two');
    expect(events.slice(0, 3)).toEqual(['checkpoint:4', 'checkpoint:7', 'checkpoint:9']);
  });

  it('keeps announcing to a primary that once answered HELLO, though a later connection closes on HELLO', async () => {
    const primary = await scriptedPrimary(); // scripted as an extension primary this time, that then restarts
    const { agent } = await dialingAgent(primary.port);
    const first = await primary.nextConnection();
    expect(await first.readWord()).toBe(0x100n);
    first.send(0x100, 1);
    first.close();
    // Refused or restarting: closed right after HELLO, as a seed-only primary would.
    const second = await withTimeout(primary.nextConnection(), 3000, 'the agent to redial');
    expect(await second.readWord()).toBe(0x100n);
    second.close();
    const third = await withTimeout(primary.nextConnection(), 3000, 'the agent to redial again');
    expect(await third.readWord()).toBe(0x100n);
    expect(agent.announces).toBe(true);
  });
});
