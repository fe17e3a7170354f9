/**
 * The README's promise across the whole inline proxy (mirror, rewriter, engine, gate), not just the engine:
 * every frame that enters ends in exactly one counted fate. Random client and VM frames (TCP and UDP,
 * matching and diverging, malformed bytes, framing rejects), checkpoints that succeed, fail or lose the
 * secondary, solo and failover at random points, the proxy's own timers on fake time; after every step
 * the counters add up to the frames in, in each protection mode (compare, periodic, hybrid), and what the recording ports received matches the counters. At
 * the end everything is settled (checkpoints finished, held packets gone stale, connections forgotten,
 * stop()) and nothing may be left without a terminal fate.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ModeThresholds, ProtectionMode } from '../../compare/protection-mode.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import type { EngineStats } from '../../compare/types.js';
import { InlineProxy, type InlineOptions } from '../../proxy/inline.js';
import type { GateCounters } from '../../proxy/gate.js';
import type { MirrorCounters } from '../../proxy/mirror.js';
import type { RewriterCounters } from '../../proxy/rewriter.js';
import { buildTcp, buildUdp } from '../support/wire-build.js';
import { FakeCheckpoints, IngressModel, RecordingPort, SecondaryPort, type FakeOutcome } from './inline-fates.js';

const { SYN, ACK, PSH, FIN, RST } = TcpFlag;
const CLIENT = '10.0.0.1';
const VM = '10.0.0.2';
const PRIMARY_ISN = 5000;

type TcpKind = 'syn' | 'synack' | 'ack' | 'data' | 'fin' | 'rst';
type FrameSpec =
  | { kind: 'tcp'; conn: number; tcp: TcpKind; rel: number; payload: string }
  | { kind: 'udp'; port: number; payload: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'cut'; conn: number; cut: number };

type Action =
  | { type: 'client'; frame: FrameSpec }
  | {
      type: 'vm';
      frame: FrameSpec;
      to: 'both' | 'primary' | 'secondary';
      diverge: boolean;
      secondaryFirst: boolean;
      /** How long before it is handled the secondary's kernel received it (a frame queued across a LOADED). */
      receivedAgo: number;
    }
  | { type: 'reject'; side: 'client' | 'primary' | 'secondary' }
  | { type: 'request' }
  | { type: 'finish'; outcome: FakeOutcome }
  | { type: 'event'; event: 'ready' | 'secondary-lost' | 'primary-lost' }
  | { type: 'primaryLost' }
  | { type: 'advance'; ms: number }
  | { type: 'refuse'; port: 'client' | 'primary' | 'secondary'; on: boolean };

const payloadArb = fc.constantFrom('', '', 'a', 'bb', 'ccc');
const oneOf = <T>(...arbs: Array<[weight: number, arbitrary: fc.Arbitrary<T>]>): fc.Arbitrary<T> =>
  fc.oneof(...arbs.map(([weight, arbitrary]) => ({ weight, arbitrary })));

const frameArb: fc.Arbitrary<FrameSpec> = oneOf<FrameSpec>(
  [
    12,
    fc.record({
      kind: fc.constant('tcp'),
      conn: fc.integer({ min: 0, max: 1 }),
      tcp: fc.constantFrom<TcpKind>('syn', 'synack', 'synack', 'ack', 'ack', 'data', 'data', 'data', 'fin', 'rst'),
      rel: fc.integer({ min: 0, max: 12 }),
      payload: payloadArb,
    }),
  ],
  [3, fc.record({ kind: fc.constant('udp'), port: fc.integer({ min: 0, max: 1 }), payload: payloadArb })],
  [1, fc.record({ kind: fc.constant('bytes'), bytes: fc.uint8Array({ maxLength: 48 }) })],
  [
    1,
    fc.record({ kind: fc.constant('cut'), conn: fc.integer({ min: 0, max: 1 }), cut: fc.integer({ min: 1, max: 53 }) }),
  ],
);

// Weights: mostly traffic and checkpoints; a lost primary is final, so about one run in two sees one.
const actionArb: fc.Arbitrary<Action> = oneOf<Action>(
  [60, fc.record({ type: fc.constant('client'), frame: frameArb })],
  [
    80,
    fc.record({
      type: fc.constant('vm'),
      frame: frameArb,
      to: fc.constantFrom('both', 'both', 'both', 'primary', 'secondary'),
      diverge: fc.constantFrom(false, false, false, true),
      secondaryFirst: fc.boolean(),
      receivedAgo: fc.constantFrom(0, 0, 0, 10),
    }),
  ],
  [
    20,
    fc.record({
      type: fc.constant('finish'),
      outcome: fc.constantFrom<FakeOutcome>('ok', 'ok', 'ok', 'failed', 'secondary-lost', 'rejected'),
    }),
  ],
  [12, fc.record({ type: fc.constant('advance'), ms: fc.constantFrom(5, 20, 60, 250, 1000) })],
  [6, fc.constant({ type: 'request' })],
  [3, fc.record({ type: fc.constant('reject'), side: fc.constantFrom('client', 'primary', 'secondary') })],
  [
    3,
    fc.record({
      type: fc.constant('refuse'),
      port: fc.constantFrom('client', 'primary', 'secondary'),
      on: fc.boolean(),
    }),
  ],
  [5, fc.constant({ type: 'event', event: 'ready' })],
  [3, fc.constant({ type: 'event', event: 'secondary-lost' })],
  [1, fc.constant({ type: 'event', event: 'primary-lost' })],
  [1, fc.constant({ type: 'primaryLost' })],
);

const optionsArb = fc.record({
  startProtected: fc.boolean(),
  secondaryIsn: fc.constantFrom(PRIMARY_ISN, 9000, 0xffff_fff0),
  checkpointTimerMs: fc.constantFrom(0, 40),
  maxHeldIngress: fc.integer({ min: 0, max: 4 }),
  maxHeldFrames: fc.integer({ min: 0, max: 3 }),
  maxHeldPerConnection: fc.integer({ min: 0, max: 3 }),
  maxQueueSize: fc.integer({ min: 1, max: 6 }),
  resetOffsetsOnCheckpoint: fc.boolean(),
  stopDuringCheckpoint: fc.boolean(),
  secondaryReceiveTimes: fc.boolean(),
  protection: fc.constantFrom<ProtectionMode>('compare', 'periodic', 'hybrid'),
});

/** Small thresholds, so hybrid switches both ways within a run's few hundred simulated milliseconds. */
const quickThresholds: ModeThresholds = {
  periodMs: 30,
  windowMs: 100,
  maxDivergenceCheckpoints: 1,
  maxPausedShare: 0.5,
  calmMs: 150,
  calmDivergences: 2,
};

/** Builds one frame; the VM's side uses its own ISN, the client's acks the primary's sequence space. */
function build(spec: FrameSpec, from: 'client' | 'vm', isn: number): Buffer {
  if (spec.kind === 'bytes') return Buffer.from(spec.bytes);
  if (spec.kind === 'udp') {
    const ends = { srcPort: 5353 + spec.port, dstPort: 53 };
    const [src, dst, srcPort, dstPort] =
      from === 'client' ? [CLIENT, VM, ends.srcPort, ends.dstPort] : [VM, CLIENT, ends.dstPort, ends.srcPort];
    return buildUdp({ src, dst, srcPort, dstPort, payload: spec.payload });
  }
  if (spec.kind === 'cut') {
    const whole = build({ kind: 'tcp', conn: spec.conn, tcp: 'data', rel: 0, payload: 'cut' }, from, isn);
    return Buffer.from(whole.subarray(0, Math.min(spec.cut, whole.length - 1)));
  }
  const clientPort = 40000 + spec.conn;
  const flags = { syn: SYN, synack: SYN | ACK, ack: ACK, data: ACK | PSH, fin: FIN | ACK, rst: RST }[spec.tcp];
  const payload = spec.tcp === 'data' ? spec.payload || 'd' : '';
  if (from === 'client') {
    const seq = spec.tcp === 'syn' ? 100 : 101 + spec.rel;
    return buildTcp({
      src: CLIENT,
      dst: VM,
      srcPort: clientPort,
      dstPort: 80,
      seq,
      ack: PRIMARY_ISN + 1 + spec.rel,
      flags,
      payload,
    });
  }
  const seq = (spec.tcp === 'syn' || spec.tcp === 'synack' ? isn : isn + 1 + spec.rel) >>> 0;
  return buildTcp({ src: VM, dst: CLIENT, srcPort: 80, dstPort: clientPort, seq, ack: 101, flags, payload });
}

function diverged(spec: FrameSpec): FrameSpec {
  if (spec.kind === 'tcp') return { ...spec, tcp: 'data', payload: `${spec.payload}x` };
  if (spec.kind === 'udp') return { ...spec, payload: `${spec.payload}x` };
  return spec;
}

interface Status {
  gate: GateCounters & { heldFrames: number };
  mirror: MirrorCounters & { heldFrames: number };
  rewriter: RewriterCounters;
  engine: EngineStats;
}

type Options = typeof optionsArb extends fc.Arbitrary<infer T> ? T : never;

function setup(o: Options) {
  let now = 0;
  const checkpoints = new FakeCheckpoints(o.startProtected);
  const options: Partial<InlineOptions> = {
    checkpointTimerMs: o.checkpointTimerMs,
    maxHeldIngress: o.maxHeldIngress,
    maxHeldFrames: o.maxHeldFrames,
    resetOffsetsOnCheckpoint: o.resetOffsetsOnCheckpoint,
    rewriterSweepMs: 100,
    rewriter: { maxHeldPerConnection: o.maxHeldPerConnection, lingerMs: 50, idleMs: 500 },
    compare: { compareTimeoutMs: 100, expiredScanCycleMs: 20, maxQueueSize: o.maxQueueSize },
    protection: { mode: o.protection, thresholds: quickThresholds },
  };
  const proxy = new InlineProxy(checkpoints, options, () => now);
  const ports = { client: new RecordingPort(), primary: new RecordingPort(), secondary: new SecondaryPort() };
  const received = { ago: 0 };
  const secondaryTime = { frame: () => now - received.ago, now: () => now };
  proxy.attach(ports, o.secondaryReceiveTimes ? secondaryTime : undefined);
  const model = new IngressModel(o.maxHeldIngress);
  const fed = { client: new Set<Buffer>(), primary: new Set<Buffer>(), secondary: new Set<Buffer>() };
  const seen = { rejected: 0, malformed: { primary: 0, secondary: 0 } };
  proxy.on('checkpoint-start', () => model.checkpointStart());
  proxy.on('checkpoint', (done) => model.checkpointDone(done.deliveredIngress, proxy.mode));
  proxy.on('mode', ({ mode }) => model.modeChanged(mode));
  proxy.on('malformed', ({ side }) => seen.malformed[side]++);
  proxy.on('rejected', () => seen.rejected++);
  proxy.start();
  /** Moves the proxy's clock by `ms` and runs its timers for `timerMs` (enough for each to fire once). */
  const advance = (ms: number, timerMs = ms) => {
    now += ms;
    vi.advanceTimersByTime(timerMs);
  };
  return { proxy, checkpoints, ports, model, fed, seen, advance, received, secondaryIsn: o.secondaryIsn };
}
type Harness = ReturnType<typeof setup>;

function feedVm(h: Harness, side: 'primary' | 'secondary', frame: Buffer): void {
  h.fed[side].add(frame);
  h.ports.secondary.inVmCall = true;
  try {
    h.proxy.sinks[side].onFrame(frame, 0);
  } finally {
    h.ports.secondary.inVmCall = false;
  }
}

async function act(h: Harness, a: Action): Promise<void> {
  switch (a.type) {
    case 'client': {
      const frame = build(a.frame, 'client', PRIMARY_ISN);
      h.fed.client.add(frame);
      const mode = h.proxy.mode;
      h.proxy.sinks.client.onFrame(frame, 0);
      h.model.clientFrame(mode);
      return;
    }
    case 'vm': {
      const primary = () => feedVm(h, 'primary', build(a.frame, 'vm', PRIMARY_ISN));
      const secondarySpec = a.diverge ? diverged(a.frame) : a.frame;
      const secondary = () => {
        h.received.ago = a.receivedAgo;
        feedVm(h, 'secondary', build(secondarySpec, 'vm', h.secondaryIsn));
        h.received.ago = 0;
      };
      const order = a.secondaryFirst ? [secondary, primary] : [primary, secondary];
      if (a.to === 'both') order.forEach((send) => send());
      else if (a.to === 'primary') primary();
      else secondary();
      return;
    }
    case 'reject':
      h.proxy.sinks[a.side].onReject('truncated', 70000);
      return;
    case 'request':
      h.proxy.requestCheckpoint('test');
      return;
    case 'finish':
      return h.checkpoints.finish(a.outcome);
    case 'event':
      if (a.event === 'ready') h.checkpoints.isProtected = true;
      if (a.event === 'secondary-lost') h.checkpoints.isProtected = false;
      if (a.event === 'ready') h.checkpoints.emit('ready', { peer: 'secondary', extensions: true });
      else h.checkpoints.emit(a.event, { reason: a.event });
      return;
    case 'primaryLost':
      h.proxy.primaryLost('test');
      return;
    case 'advance':
      h.advance(a.ms);
      return;
    case 'refuse':
      h.ports[a.port].refuse = a.on;
  }
}

/**
 * Checkpoints finish, held packets go stale (a checkpoint) and connections idle (forgotten), then stop():
 * with `duringCheckpoint`, while the checkpoint those stale packets asked for still runs.
 */
async function settle(h: Harness, duringCheckpoint: boolean): Promise<void> {
  for (const port of Object.values(h.ports)) port.refuse = false;
  while (h.checkpoints.running > 0) await h.checkpoints.finish('ok');
  h.advance(1_000_000, 100);
  while (h.checkpoints.running > 0 && !duringCheckpoint) await h.checkpoints.finish('ok');
  await h.proxy.stop();
}

/**
 * Every frame in has exactly one counted fate. `settled`: none is still held anywhere, but for the client
 * input a checkpoint that still runs holds.
 */
function checkFates(h: Harness, settled: boolean): void {
  const c = h.proxy.counters;
  const s = h.proxy.status() as unknown as Status;
  const { gate: g, mirror: m, rewriter: r, engine: e } = s;
  const { client, primary, secondary } = h.ports;
  expect(h.model.errors).toEqual([]);

  // VM output: passed through, released, dropped as a secondary copy, malformed, discarded for the mode, or held.
  expect(c.framesIn.primary).toBe(h.fed.primary.size);
  expect(c.framesIn.secondary).toBe(h.fed.secondary.size);
  expect(c.malformed).toBe(h.seen.malformed.primary + h.seen.malformed.secondary);
  expect(c.rejected).toBe(h.seen.rejected);
  expect(c.framesIn.primary).toBe(
    c.passedThrough + c.primaryAfterFailover + c.released + h.seen.malformed.primary + e.heldPrimaryPackets,
  );
  // Secondary output the rewriter held for the primary's ISN comes back into the comparison (or, at failover,
  // to the client) and is counted there; the rest is still held, abandoned, or dropped at the rewriter's bound.
  const secondaryFated =
    c.secondaryUnprotected +
    c.secondaryBeforeFlush +
    c.failoverReleased +
    c.secondaryDropped +
    h.seen.malformed.secondary +
    e.heldSecondaryPackets;
  // heldOverflow counts both directions; the mirror counts the client's share (droppedForIsn).
  const secondaryOverflow = r.heldOverflow - m.droppedForIsn;
  const secondaryHeldOrAbandoned = c.framesIn.secondary - secondaryFated - secondaryOverflow;
  expect(secondaryOverflow).toBeGreaterThanOrEqual(0);
  expect(secondaryHeldOrAbandoned).toBeGreaterThanOrEqual(0);
  expect(secondaryHeldOrAbandoned).toBeLessThanOrEqual(r.heldSecondary);

  // The gate: what entered it was sent or is held; the client port got exactly what was sent, each frame once.
  expect(g.passed + g.held).toBe(c.passedThrough + c.released + c.failoverReleased);
  expect(g.held).toBe(g.flushed + g.heldFrames);
  expect(client.attempts.length).toBe(g.passed + g.flushed);
  expect(client.refused).toBe(g.sendFailures);
  expect(new Set(client.attempts).size).toBe(client.attempts.length);
  const fromPrimary = client.attempts.filter((f) => h.fed.primary.has(f)).length;
  const fromSecondary = client.attempts.filter((f) => h.fed.secondary.has(f)).length;
  expect(fromPrimary + fromSecondary).toBe(client.attempts.length);

  // Client input: delivered, held for the checkpoint, or dropped at the hold's bound.
  expect(c.framesIn.client).toBe(h.fed.client.size);
  expect(m.heldFrames).toBe(h.model.held);
  expect(m.heldIngressOverflow).toBe(h.model.overflow);
  expect(c.framesIn.client).toBe(h.model.delivered + h.model.held + h.model.overflow);
  // Each delivery's copies: the primary's are sent; the secondary's are sent, held for the ISN or dropped at that bound.
  for (const port of [primary, secondary]) {
    expect(port.attempts.every((f) => h.fed.client.has(f))).toBe(true);
    expect(new Set(port.attempts).size).toBe(port.attempts.length);
  }
  expect(primary.attempts.length).toBe(h.model.primaryCopies);
  expect(h.model.secondaryCopies).toBe(secondary.direct + m.heldForIsn + m.droppedForIsn);
  expect(m.heldForIsn).toBe(r.held);
  const clientHeldOrAbandoned = r.held - secondary.fromRewriterHold;
  expect(clientHeldOrAbandoned).toBeGreaterThanOrEqual(0);
  // heldAbandoned counts both directions too: what is not abandoned of the two is still held.
  const heldForIsnNow = secondaryHeldOrAbandoned + clientHeldOrAbandoned - r.heldAbandoned;
  expect(heldForIsnNow).toBeGreaterThanOrEqual(0);
  expect(primary.accepted).toBe(m.toPrimary);
  expect(secondary.accepted).toBe(m.toSecondary);
  expect(primary.refused + secondary.refused).toBe(m.sendFailures);

  if (!settled) return;
  expect([e.heldPrimaryPackets, e.heldSecondaryPackets, g.heldFrames, heldForIsnNow]).toEqual([0, 0, 0, 0]);
  if (h.checkpoints.running === 0) expect(m.heldFrames).toBe(0);
  expect(fromPrimary).toBe(c.passedThrough + c.released);
  expect(fromSecondary).toBe(c.failoverReleased);
}

describe('InlineProxy: every frame ends in exactly one counted fate', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds for random frames, checkpoints, losses and timer ticks (1000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(
        optionsArb,
        fc.array(actionArb, { minLength: 1, maxLength: 80, size: 'max' }),
        async (options, actions) => {
          vi.clearAllTimers();
          const h = setup(options);
          try {
            for (const action of actions) {
              await act(h, action);
              checkFates(h, false);
            }
            await settle(h, options.stopDuringCheckpoint);
            checkFates(h, true);
          } finally {
            await h.proxy.stop();
          }
        },
      ),
      { numRuns: 1000 },
    );
  }, 120_000);
});
