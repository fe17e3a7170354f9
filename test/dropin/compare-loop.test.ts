import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Divergence, Packet, Side } from '../../compare/types.js';
import { CompareLoop, type CompareEngineLike, type EngineDecision } from '../../proxy/compare-loop.js';
import type { FramedSocket } from '../../proxy/ports/framed-socket.js';
import { FrameDecoder } from '../../proxy/ports/framed.js';
import { silentLogger } from '../../src/log.js';
import { CollectingSink } from '../ports/support.js';

/** A scripted engine: each call returns the next prepared decision (or an empty one). */
class ScriptedEngine implements CompareEngineLike {
  readonly pushes: [Side, string][] = [];
  script: Partial<EngineDecision>[] = [];
  flushes = 0;
  throwOnPush = false;
  private next(): EngineDecision {
    const d = this.script.shift() ?? {};
    return { release: d.release ?? [], drop: d.drop ?? [], divergences: d.divergences ?? [], malformed: [] };
  }
  push(side: Side, frame: Buffer): EngineDecision {
    if (this.throwOnPush) throw new Error('engine bug');
    this.pushes.push([side, frame.toString()]);
    return this.next();
  }
  tick(): EngineDecision {
    return this.next();
  }
  flush(): EngineDecision {
    this.flushes++;
    return this.next();
  }
}

const packet = (text: string): Packet => ({
  frame: Buffer.from(text),
  start: 0,
  side: 'primary',
  arrivedAt: 0,
  tag: 0,
});
const divergence = (reason: Divergence['reason']): Divergence => ({
  time: 0,
  connection: { protocol: 'udp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2 },
  protocol: 'udp',
  reason,
  offset: 0,
  primary: null,
  secondary: null,
  detail: 'test',
});

/** Stands in for the outdev FramedSocket: decodes what the loop writes. */
function fakeOutdev() {
  const sink = new CollectingSink();
  const decoder = new FrameDecoder(false, sink);
  const socket = {
    backlog: 0,
    write(data: Buffer) {
      decoder.push(Buffer.from(data));
      return true;
    },
    on() {},
    pause() {},
    resume() {},
  };
  return { sink, socket: socket as unknown as FramedSocket };
}

let now = 0;
beforeEach(() => {
  vi.useFakeTimers();
  now = 1000;
});
afterEach(() => vi.useRealTimers());

function setup(withNotifier: boolean) {
  const engine = new ScriptedEngine();
  const requests: number[] = [];
  const loop = new CompareLoop({
    engine,
    compareTimeoutMs: 500,
    expiredScanCycleMs: 100,
    vnetHdr: false,
    notifier: withNotifier ? { requestCheckpoint: () => requests.push(now) } : null,
    logger: silentLogger,
    clock: () => now,
  });
  const out = fakeOutdev();
  const input = { pause() {}, resume() {}, on() {} } as unknown as FramedSocket;
  loop.start({ primary: input, secondary: input, outdev: out.socket });
  return { engine, loop, out, requests };
}

describe('CompareLoop: engine decisions to output and checkpoint requests', () => {
  it('sends released frames in release order, batched at the end of the read chunk', () => {
    const { engine, loop, out } = setup(true);
    engine.script = [{}, { release: [packet('a'), packet('b')] }];
    const sink = loop.sinkFor('primary');
    sink.onFrame(Buffer.from('x'), 0);
    sink.onFrame(Buffer.from('y'), 0);
    expect(out.sink.frames).toEqual([]); // nothing written mid-chunk
    sink.onChunkEnd();
    expect(out.sink.frames.map((f) => f.frame.toString())).toEqual(['a', 'b']);
    expect(loop.counters.framesIn.primary).toBe(2);
    loop.stop();
  });

  it('one request while outstanding: later divergences coalesce; COLO_CHECKPOINT clears it', () => {
    const { engine, loop, requests } = setup(true);
    engine.script = [{ divergences: [divergence('payload')] }, { divergences: [divergence('length')] }];
    loop.input('primary', Buffer.from('p1'), 0, now);
    loop.input('secondary', Buffer.from('s1'), 0, now);
    expect(requests).toHaveLength(1);
    expect(loop.counters.checkpointRequestsCoalesced).toBe(1);
    expect(loop.checkpointOutstanding).toBe(true);
    engine.script = [{ release: [packet('held')] }, { divergences: [divergence('payload')] }];
    loop.checkpointDone();
    expect(engine.flushes).toBe(1);
    expect(loop.checkpointOutstanding).toBe(false);
    loop.input('primary', Buffer.from('p2'), 0, now);
    expect(requests).toHaveLength(2);
    loop.stop();
  });

  it('without a notifier: counted, then a local flush compare_timeout later, on a scan', () => {
    const { engine, loop, out } = setup(false);
    engine.script = [{ divergences: [divergence('payload')] }];
    loop.input('primary', Buffer.from('p'), 0, now);
    expect(loop.counters.checkpointRequestsUnanswered).toBe(1);
    now += 400;
    vi.advanceTimersByTime(400);
    expect(engine.flushes).toBe(0);
    engine.script = [{}, { release: [packet('flushed')] }]; // tick, then flush
    now += 100;
    vi.advanceTimersByTime(100);
    expect(engine.flushes).toBe(1);
    expect(loop.counters.localFlushes).toBe(1);
    expect(out.sink.frames.map((f) => f.frame.toString())).toEqual(['flushed']);
    loop.stop();
  });

  it('an engine exception loses one frame loudly, not the process', () => {
    const { engine, loop } = setup(true);
    engine.throwOnPush = true;
    expect(() => loop.input('primary', Buffer.from('boom'), 0, now)).not.toThrow();
    expect(loop.counters.internalErrors).toBe(1);
    engine.throwOnPush = false;
    loop.input('primary', Buffer.from('fine'), 0, now);
    expect(engine.pushes).toEqual([['primary', 'fine']]);
    loop.stop();
  });

  it('framing rejects are counted per side and reason', () => {
    const { loop } = setup(true);
    loop.sinkFor('secondary').onReject('zero-length', 0);
    loop.sinkFor('secondary').onReject('zero-length', 0);
    loop.sinkFor('primary').onReject('truncated', 7);
    expect(loop.counters.framing.secondary['zero-length']).toBe(2);
    expect(loop.counters.framing.primary.truncated).toBe(1);
    loop.stop();
  });
});
