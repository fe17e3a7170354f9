import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildTcp, buildUdp } from '../support/wire-build.js';
import { dissect } from '../../compare/wire/dissect.js';
import { FrameInfo, TcpFlag } from '../../compare/wire/frame-info.js';
import {
  InlineProxy,
  type CheckpointDone,
  type InlineCheckpointEngine,
  type InlineLossEvent,
} from '../../proxy/inline.js';
import { MemoryPort } from '../../proxy/port.js';

const { SYN, ACK, PSH } = TcpFlag;
const C = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80 };
const V = { src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000 };

/** The events the fake emits, shaped as the Coordinator's (src/checkpoint/engine.ts EngineEvents). */
interface FakeEngineEvents {
  ready: [event: { peer: string; extensions: boolean }];
  'secondary-lost': [event: InlineLossEvent];
  'primary-lost': [event: InlineLossEvent];
}

/** A checkpoint engine whose checkpoints finish when the test says so. */
class FakeEngine extends EventEmitter<FakeEngineEvents> implements InlineCheckpointEngine {
  isProtected = true;
  started: string[] = [];
  private resolvers: Array<(o: { ok: boolean; secondaryLost?: boolean; reason: string }) => void> = [];
  checkpoint(reason: string) {
    this.started.push(reason);
    return new Promise<{ ok: boolean; secondaryLost?: boolean; reason: string }>((resolve) =>
      this.resolvers.push(resolve),
    );
  }
  async finish(ok = true, secondaryLost = false): Promise<void> {
    const resolve = this.resolvers.shift();
    if (!resolve) throw new Error('no checkpoint is running');
    resolve({ ok, secondaryLost, reason: this.started.at(-1)! });
    await new Promise((r) => setImmediate(r));
  }
}

function setup(engine: FakeEngine | null = new FakeEngine(), checkpointTimerMs = 0) {
  let now = 0;
  const proxy = new InlineProxy(engine, { checkpointTimerMs, resetOffsetsOnCheckpoint: false }, () => now);
  const ports = { client: new MemoryPort(), primary: new MemoryPort(), secondary: new MemoryPort() };
  proxy.attach(ports);
  const tick = (ms: number) => (now += ms);
  return { proxy, ports, engine, tick };
}

const tcpInfo = (frame: Buffer) => {
  const info = new FrameInfo();
  expect(dissect(frame, 0, frame.length, info)).toBeNull();
  return info;
};

function handshake({ proxy }: ReturnType<typeof setup>, secIsn = 9000) {
  proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 100, ack: 0, flags: SYN }), 0);
  proxy.sinks.primary.onFrame(buildTcp({ ...V, seq: 5000, ack: 101, flags: SYN | ACK }), 0);
  proxy.sinks.secondary.onFrame(buildTcp({ ...V, seq: secIsn, ack: 101, flags: SYN | ACK }), 0);
  proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 101, ack: 5001, flags: ACK }), 0);
}

const reply = (seq: number, payload: string) => buildTcp({ ...V, seq, ack: 106, flags: ACK | PSH, payload });

describe('InlineProxy (memory ports, fake checkpoint engine)', () => {
  it('mirrors client frames to both VMs, rewriting acks for the secondary, and releases matching output', () => {
    const h = setup();
    handshake(h);
    expect(h.ports.primary.sent).toHaveLength(2);
    expect(h.ports.secondary.sent).toHaveLength(2);
    expect(tcpInfo(h.ports.primary.sent[1]).tcpAck).toBe(5001);
    expect(tcpInfo(h.ports.secondary.sent[1]).tcpAck).toBe(9001);
    h.proxy.sinks.primary.onFrame(reply(5001, 'hello'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9001, 'hello'), 0);
    const payloads = h.ports.client.sent.map((f) => tcpInfo(f)).filter((i) => i.payloadLength > 0);
    expect(payloads).toHaveLength(1);
    expect(payloads[0].tcpSeq).toBe(5001);
    expect(h.engine!.started).toEqual([]);
  });

  it('on divergence: holds the gate and the ingress until LOADED, then flushes in order before newer frames', async () => {
    const h = setup();
    handshake(h);
    const released = () => h.ports.client.sent.map((f) => f.toString('latin1'));
    const before = h.ports.client.sent.length;
    h.proxy.sinks.primary.onFrame(reply(5001, 'AAAA'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9001, 'BBBB'), 0);
    expect(h.engine!.started).toEqual(['payload']);
    // While the checkpoint runs: more primary output is held, client input is held.
    h.proxy.sinks.primary.onFrame(reply(5005, 'CCCC'), 0);
    h.proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 106, ack: 5009, flags: ACK }), 0);
    expect(h.ports.client.sent.length).toBe(before);
    const toPrimaryBefore = h.ports.primary.sent.length;
    await h.engine!.finish();
    const after = released()
      .slice(before)
      .map((f) => tcpInfo(Buffer.from(f, 'latin1')));
    expect(after.map((i) => i.tcpSeq)).toEqual([5001, 5005]);
    expect(h.ports.primary.sent.length).toBe(toPrimaryBefore + 1);
    // Gate open again: a new frame passes once compared.
    h.proxy.sinks.primary.onFrame(reply(5009, 'DDDD'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9009, 'DDDD'), 0);
    expect(tcpInfo(h.ports.client.sent.at(-1)!).tcpSeq).toBe(5009);
  });

  it("drops, with the flush, the secondary frames the kernel received before LOADED (the replaced VM's)", async () => {
    const engine = new FakeEngine();
    const proxy = new InlineProxy(engine, { checkpointTimerMs: 0, resetOffsetsOnCheckpoint: false }, () => 0);
    const ports = { client: new MemoryPort(), primary: new MemoryPort(), secondary: new MemoryPort() };
    // The secondary port's receive clock: each frame carries the time the test gives it.
    let frameTime = 0;
    let clockNow = 0;
    proxy.attach(ports, { frame: () => frameTime, now: () => clockNow });
    const h = { proxy, ports, engine, tick: () => 0 };
    handshake(h);
    proxy.requestCheckpoint('timer');
    clockNow = 1000;
    await engine.finish();
    // Received at 900, before LOADED at 1000, handled after the flush: the old VM's, dropped and counted.
    frameTime = 900;
    proxy.sinks.secondary.onFrame(reply(9001, 'XXXX'), 0);
    expect(proxy.counters.secondaryBeforeFlush).toBe(1);
    // Received after LOADED: compared as usual, and it matches the primary's.
    frameTime = 1100;
    proxy.sinks.primary.onFrame(reply(5001, 'hello'), 0);
    proxy.sinks.secondary.onFrame(reply(9001, 'hello'), 0);
    expect(engine.started).toEqual(['timer']);
    expect(tcpInfo(ports.client.sent.at(-1)!).payloadLength).toBe(5);
    expect(proxy.counters.secondaryBeforeFlush).toBe(1);
  });

  it('compares a connection whose secondary answered the SYN before the primary did', () => {
    const h = setup();
    h.proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 100, ack: 0, flags: SYN }), 0);
    // The secondary is faster: its SYN-ACK comes before the primary's, when no offset is known yet.
    h.proxy.sinks.secondary.onFrame(buildTcp({ ...V, seq: 9000, ack: 101, flags: SYN | ACK }), 0);
    h.proxy.sinks.primary.onFrame(buildTcp({ ...V, seq: 5000, ack: 101, flags: SYN | ACK }), 0);
    h.proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 101, ack: 5001, flags: ACK }), 0);
    h.proxy.sinks.primary.onFrame(reply(5001, 'HTTP/1.1 200 OK'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9001, 'HTTP/1.1 200 OK'), 0);
    h.proxy.sinks.primary.onFrame(reply(5016, 'Content-Type'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9016, 'Content-Type'), 0);
    expect(h.engine!.started).toEqual([]);
    const payloads = h.ports.client.sent.map((f) => tcpInfo(f)).filter((i) => i.payloadLength > 0);
    expect(payloads.map((i) => i.tcpSeq)).toEqual([5001, 5016]);
  });

  it('after solo, compares a connection that lived through it from where both VMs are now', () => {
    const h = setup();
    handshake(h);
    h.proxy.sinks.primary.onFrame(reply(5001, 'hello'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9001, 'hello'), 0);
    h.engine!.emit('secondary-lost', { reason: 'heartbeat' });
    // Solo: the primary's stream goes on around the comparison.
    h.proxy.sinks.primary.onFrame(reply(5006, 'while solo'), 0);
    // A new secondary is a clone (offsets back to 0): it resumes exactly where the primary is.
    h.engine!.emit('ready', { peer: 'x', extensions: true });
    const sent = h.ports.client.sent.length;
    h.proxy.sinks.primary.onFrame(reply(5016, 'protected again'), 0);
    h.proxy.sinks.secondary.onFrame(reply(5016, 'protected again'), 0);
    expect(h.ports.client.sent.length).toBe(sent + 1);
    expect(tcpInfo(h.ports.client.sent.at(-1)!).tcpSeq).toBe(5016);
    expect(h.engine!.started).toEqual([]);
  });

  it('with holdFromPrimaryStop, compares and releases during a checkpoint until the primary is about to stop', async () => {
    const engine = new FakeEngine();
    const proxy = new InlineProxy(
      engine,
      { checkpointTimerMs: 0, resetOffsetsOnCheckpoint: false, holdFromPrimaryStop: true },
      () => 0,
    );
    const ports = { client: new MemoryPort(), primary: new MemoryPort(), secondary: new MemoryPort() };
    proxy.attach(ports);
    handshake({ proxy, ports, engine, tick: () => 0 });
    proxy.requestCheckpoint('timer');
    // A live pre-copy: the primary still runs and matching output still flows.
    proxy.sinks.primary.onFrame(reply(5001, 'early'), 0);
    proxy.sinks.secondary.onFrame(reply(9001, 'early'), 0);
    expect(tcpInfo(ports.client.sent.at(-1)!).tcpSeq).toBe(5001);
    proxy.primaryStopping();
    const sent = ports.client.sent.length;
    proxy.sinks.primary.onFrame(reply(5006, 'late'), 0);
    proxy.sinks.secondary.onFrame(reply(9006, 'late'), 0);
    expect(ports.client.sent.length).toBe(sent);
    await engine.finish();
    expect(tcpInfo(ports.client.sent.at(-1)!).tcpSeq).toBe(5006);
    // Outside a checkpoint the call holds nothing.
    proxy.primaryStopping();
    proxy.sinks.primary.onFrame(reply(5010, 'after'), 0);
    proxy.sinks.secondary.onFrame(reply(9010, 'after'), 0);
    expect(tcpInfo(ports.client.sent.at(-1)!).tcpSeq).toBe(5010);
  });

  it('coalesces checkpoint requests made during a checkpoint into one more', async () => {
    const h = setup();
    h.proxy.requestCheckpoint('timer');
    h.proxy.requestCheckpoint('payload');
    h.proxy.requestCheckpoint('timeout');
    h.proxy.requestCheckpoint('overflow');
    expect(h.engine!.started).toEqual(['timer']);
    await h.engine!.finish();
    expect(h.engine!.started).toEqual(['timer', 'payload']);
    expect(h.proxy.counters.coalesced).toBe(2);
    await h.engine!.finish();
    expect(h.engine!.started).toHaveLength(2);
  });

  it('goes solo when the secondary is lost mid-checkpoint: every held frame is flushed and the primary passes through', async () => {
    const h = setup();
    handshake(h);
    h.proxy.sinks.primary.onFrame(reply(5001, 'AAAA'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9001, 'BBBB'), 0);
    h.proxy.sinks.primary.onFrame(reply(5005, 'CCCC'), 0);
    const modes: string[] = [];
    h.proxy.on('mode', (m: { mode: string }) => modes.push(m.mode));
    await h.engine!.finish(false, true);
    expect(modes).toEqual(['solo']);
    const seqs = h.ports.client.sent
      .map((f) => tcpInfo(f))
      .filter((i) => i.payloadLength > 0)
      .map((i) => i.tcpSeq);
    expect(seqs).toEqual([5001, 5005]);
    h.proxy.sinks.primary.onFrame(reply(5009, 'EEEE'), 0);
    expect(tcpInfo(h.ports.client.sent.at(-1)!).tcpSeq).toBe(5009);
    const toSecondary = h.ports.secondary.sent.length;
    h.proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 106, ack: 5013, flags: ACK }), 0);
    expect(h.ports.secondary.sent.length).toBe(toSecondary);
    // Re-protection when the secondary is ready again.
    h.engine!.emit('ready', { peer: 'x', extensions: true });
    expect(h.proxy.mode).toBe('protected');
  });

  it("fails over: the secondary's output, in the primary's sequence space, reaches the client", () => {
    const h = setup();
    handshake(h);
    h.proxy.primaryLost('primary guest died');
    expect(h.proxy.mode).toBe('failover');
    h.proxy.sinks.secondary.onFrame(reply(9001, 'from secondary'), 0);
    const last = tcpInfo(h.ports.client.sent.at(-1)!);
    expect(last.tcpSeq).toBe(5001);
    const toPrimary = h.ports.primary.sent.length;
    h.proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 106, ack: 5015, flags: ACK }), 0);
    expect(h.ports.primary.sent.length).toBe(toPrimary);
    expect(tcpInfo(h.ports.secondary.sent.at(-1)!).tcpAck).toBe(9015);
  });

  it('passes the primary through and mirrors nothing before the secondary is ready', () => {
    const engine = new FakeEngine();
    engine.isProtected = false;
    const h = setup(engine);
    expect(h.proxy.mode).toBe('unprotected');
    const udp = buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: 'x' });
    h.proxy.sinks.primary.onFrame(udp, 0);
    expect(h.ports.client.sent).toHaveLength(1);
    h.proxy.sinks.client.onFrame(buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5353, dstPort: 53 }), 0);
    expect(h.ports.primary.sent).toHaveLength(1);
    expect(h.ports.secondary.sent).toHaveLength(0);
  });

  it('reports each checkpoint: when its outcome arrived (before the flush), what was flushed and delivered', async () => {
    const h = setup();
    handshake(h);
    const done: CheckpointDone[] = [];
    h.proxy.on('checkpoint', (d) => done.push(d));
    h.tick(5);
    h.proxy.sinks.primary.onFrame(reply(5001, 'AAAA'), 0);
    h.proxy.sinks.secondary.onFrame(reply(9001, 'BBBB'), 0);
    h.proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 106, ack: 5005, flags: ACK }), 0);
    h.tick(20);
    await h.engine!.finish();
    expect(done).toEqual([{ reason: 'payload', ok: true, loadedAt: 25, flushedFrames: 1, deliveredIngress: 1 }]);
  });

  it("follows the checkpoint engine's events, with their reasons: lost secondary, ready again, lost primary", () => {
    const h = setup();
    const modes: { mode: string; reason: string }[] = [];
    h.proxy.on('mode', (m) => modes.push(m));
    h.engine!.emit('secondary-lost', { reason: 'heartbeat' });
    h.engine!.emit('ready', { peer: 'x', extensions: true });
    h.engine!.emit('primary-lost', { reason: 'closed' });
    expect(modes).toEqual([
      { mode: 'solo', reason: 'heartbeat' },
      { mode: 'protected', reason: 'secondary ready' },
      { mode: 'failover', reason: 'closed' },
    ]);
  });

  it('has typed events: the compiler rejects a listener of the wrong payload or an unknown event', () => {
    const proxy = new InlineProxy(null);
    // @ts-expect-error: 'mode' carries { mode, reason }, not a number
    proxy.on('mode', (n: number) => n);
    // @ts-expect-error: there is no 'modes' event
    proxy.on('modes', () => undefined);
    // Checked by tsc (npm run lint); at run time both listeners are simply registered.
    expect(proxy.listenerCount('mode')).toBe(1);
  });

  describe('on fake timers (the proxy clock moved with them)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('asks for a checkpoint when a held packet goes stale (compare_timeout), via the periodic scan', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
      const h = setup();
      h.proxy.start();
      const udp = buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: 'only primary' });
      h.proxy.sinks.primary.onFrame(udp, 0);
      const { compareTimeoutMs, expiredScanCycleMs } = h.proxy.engine.options;
      h.tick(compareTimeoutMs);
      vi.advanceTimersByTime(expiredScanCycleMs);
      expect(h.engine!.started).toEqual([]);
      h.tick(1);
      vi.advanceTimersByTime(expiredScanCycleMs);
      expect(h.engine!.started).toEqual(['timeout']);
      await h.proxy.stop();
    });

    it('CHKPOINT_TIMER asks for a checkpoint when none ran for checkpointTimerMs, and re-arms after each', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
      const h = setup(new FakeEngine(), 1000);
      h.proxy.start();
      vi.advanceTimersByTime(999);
      expect(h.engine!.started).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(h.engine!.started).toEqual(['timer']);
      // None while that checkpoint runs; the next a full period after it ended.
      vi.advanceTimersByTime(5000);
      expect(h.engine!.started).toEqual(['timer']);
      await h.engine!.finish();
      vi.advanceTimersByTime(999);
      expect(h.engine!.started).toEqual(['timer']);
      vi.advanceTimersByTime(1);
      expect(h.engine!.started).toEqual(['timer', 'timer']);
      await h.proxy.stop();
    });
  });
});
