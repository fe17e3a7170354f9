import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUdp } from '../support/wire-build.js';
import { encodeFrame } from '../../proxy/ports/framed.js';
import { frameOf, lengthOnly, withTimeout, type Peer } from '../ports/support.js';
import { CompareProcess, XEN } from './support.js';

/**
 * Bad input on one socket, against ONE long-running process: each test also shows that the process keeps
 * serving the other sockets (a matched pair still goes primary -> outdev afterwards).
 */
let proc: CompareProcess;
let out: Peer;
let notify: Peer;
let pri: Peer;
let sec: Peer;
let flow = 0;

function udp(port: number, payload: string): Buffer {
  return buildUdp({ src: '10.1.0.1', dst: '10.1.0.2', srcPort: port, dstPort: 7, payload });
}

/** A fresh matched pair on its own flow; resolves when outdev has it. */
async function provePairFlows(): Promise<void> {
  const frame = udp(5000 + ++flow, `pair-${flow}`);
  const before = out.sink.frames.length;
  await pri.write(frameOf(frame));
  await sec.write(frameOf(frame));
  await out.sink.waitFor(before + 1);
  expect(out.sink.frames[before].frame.equals(frame)).toBe(true);
}

beforeAll(async () => {
  proc = await CompareProcess.start([]);
  out = await proc.connect('outdev');
  notify = await proc.connect('notify-dev');
  pri = await proc.connect('primary-in');
  sec = await proc.connect('secondary-in');
}, 90_000);

afterAll(async () => {
  for (const p of [out, notify, pri, sec]) p?.close();
  await proc?.stop();
});

describe('colo-proxy compare: faults on one socket leave the others serving', { timeout: 60_000 }, () => {
  it('a zero-length frame is skipped, counted and logged; the same stream carries on', async () => {
    const frame = udp(4000, 'after-zero');
    await pri.write(Buffer.concat([lengthOnly(0), frameOf(frame)]));
    await sec.write(frameOf(frame));
    await out.sink.waitFor(1);
    expect(out.sink.frames.at(-1)!.frame.equals(frame)).toBe(true);
    const s = await proc.statsUntil((x) => x.loop.framing.primary['zero-length'] === 1);
    expect(s.sockets['primary-in'].disconnects).toBe(0);
    await proc.waitForStderr(/rejected primary frame \(zero-length\)/);
  });

  it('an oversized length closes only that connection; the listener takes a reconnect', async () => {
    await sec.write(lengthOnly(69633));
    await withTimeout(sec.closed, 5000, 'for the secondary connection to be closed');
    const s = await proc.statsUntil((x) => x.loop.framing.secondary.oversized === 1);
    expect(s.sockets['primary-in'].connected).toBe(true);
    expect(s.sockets.outdev.connected).toBe(true);
    await proc.waitForStderr(/rejected secondary frame \(oversized\): closing this connection only/);
    sec = await proc.connect('secondary-in');
    await provePairFlows();
  });

  it('a length prefix cut mid-frame, then the peer leaving, is counted truncated; a new peer is served', async () => {
    await pri.write(frameOf(Buffer.alloc(100, 1)).subarray(0, 50));
    await proc.statsUntil((x) => (x.sockets['primary-in'] as unknown as { bytesIn: number }).bytesIn >= 50);
    pri.close();
    const s = await proc.statsUntil((x) => x.loop.framing.primary.truncated === 1);
    expect(s.sockets['primary-in'].connected).toBe(false);
    pri = await proc.connect('primary-in');
    await provePairFlows();
  });

  it('garbage on the notify socket is logged and counted; after a reconnect the handshake still works', async () => {
    await notify.write(encodeFrame(Buffer.from('COLO_CHECKPOINT\0junk'), false));
    await proc.statsUntil((x) => x.notify!.unknown === 1);
    await proc.waitForStderr(/notify: unsupported message ignored/);
    await provePairFlows();

    // Raw garbage: its first four bytes read as a huge length, so only the notify connection is closed.
    await notify.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await withTimeout(notify.closed, 5000, 'for the notify connection to be closed');
    const s = await proc.statsUntil((x) => x.notify!.framing.oversized === 1);
    expect(s.notify!.checkpoints).toBe(0);
    await provePairFlows();

    notify = await proc.connect('notify-dev');
    await notify.write(XEN.init);
    await notify.sink.waitFor(1);
    expect(notify.texts()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
  });

  it('frames released while outdev is away are delivered, in order, when it reconnects', async () => {
    out.close();
    await proc.statsUntil((x) => !x.sockets.outdev.connected);
    const frames = [udp(6001, 'while-away-1'), udp(6002, 'while-away-2')];
    for (const f of frames) {
      await pri.write(frameOf(f));
      await sec.write(frameOf(f));
    }
    await proc.statsUntil((x) => x.loop.released >= 5 + frames.length);
    out = await proc.connect('outdev');
    await out.sink.waitFor(2);
    expect(out.sink.frames.map((f) => f.frame)).toEqual(frames);
    await provePairFlows();
  });

  it('anything the outdev peer sends is ignored (counted, never parsed): garbage cannot close outdev', async () => {
    await out.write(Buffer.from('\xff\xff\xff\xffgarbage', 'latin1'));
    await proc.statsUntil((x) => (x.sockets.outdev as unknown as { bytesIn: number }).bytesIn >= 11);
    await provePairFlows();
    const s = await proc.stats();
    expect(s.sockets.outdev.disconnects).toBe(1); // the earlier deliberate reconnect only
  });

  it('a frame the engine cannot parse is rejected with a counted reason, not forwarded blindly', async () => {
    const before = out.sink.frames.length;
    await pri.write(frameOf(Buffer.from('tiny')));
    const s = await proc.statsUntil((x) => x.frames.malformed.total >= 1);
    expect(s.frames.in.primary).toBeGreaterThan(0);
    await provePairFlows();
    expect(out.sink.frames.length).toBe(before + 1);
  });
});
