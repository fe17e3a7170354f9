import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Packet } from '../../compare/types.js';
import { CompareLoop } from '../../proxy/compare-loop.js';
import type { FramedSocket } from '../../proxy/ports/framed-socket.js';
import { READ_BYTES, SlabReader } from '../../proxy/ports/read-slabs.js';
import { silentLogger } from '../../src/log.js';
import { divergence, fakeOutdev, packet, ScriptedEngine } from './loop-support.js';

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

  it('input frames are reported done to the read slabs once released (after the copy out) or dropped', () => {
    const { engine, loop, out } = setup(true);
    const reader = new SlabReader(loop.readSlabs);
    const region = reader.next();
    region.fill(0x41);
    region.write('primary-a', 0);
    const chunk = reader.chunk(region, READ_BYTES);
    const a = chunk.subarray(0, 9);
    const b = chunk.subarray(100, 109);
    reader.track(a);
    reader.track(b);
    reader.close(); // the slab takes no more reads; two of its frames are held
    const held = (frame: Buffer): Packet => ({ ...packet(''), frame });
    engine.script = [{ release: [held(a)] }, { drop: [held(b)] }];
    const sink = loop.sinkFor('primary');
    sink.onFrame(a, 0);
    sink.onChunkEnd();
    expect(loop.readSlabs.freeSlabs).toBe(0); // b is still held by the engine
    loop.sinkFor('secondary').onFrame(b, 0);
    loop.sinkFor('secondary').onChunkEnd();
    expect(loop.readSlabs.freeSlabs).toBe(1);
    expect(out.sink.frames.map((f) => f.frame.toString())).toEqual(['primary-a']);
    loop.stop();
  });

  it('the output batch restarts at its slab start only once outdev holds nothing of an earlier write', () => {
    const { engine, loop } = setup(true);
    // An outdev that keeps the written buffers themselves, as a socket does until the kernel takes them.
    const written: Buffer[] = [];
    let backlog = 0;
    const outdev = {
      get backlog() {
        return backlog;
      },
      write(data: Buffer) {
        written.push(data);
        return true;
      },
      on() {},
    } as unknown as FramedSocket;
    const input = { pause() {}, resume() {}, on() {} } as unknown as FramedSocket;
    loop.start({ primary: input, secondary: input, outdev });
    const sink = loop.sinkFor('primary');
    const emit = (text: string): void => {
      engine.script = [{ release: [packet(text)] }];
      sink.onFrame(Buffer.from('x'), 0);
      sink.onChunkEnd();
    };
    backlog = 100; // the first write is still queued in the socket
    emit('first-frame');
    emit('second-frame');
    expect(written.map((w) => w.subarray(4).toString())).toEqual(['first-frame', 'second-frame']);
    expect(written[1].byteOffset).toBeGreaterThan(written[0].byteOffset); // appended, not overwritten
    backlog = 0; // both writes have completed
    emit('third-frame');
    expect(written[2].buffer).toBe(written[0].buffer);
    expect(written[2].byteOffset).toBe(written[0].byteOffset); // the slab is reused from its start
    loop.stop();
  });
});
