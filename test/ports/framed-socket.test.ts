import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FramedSocket, type DisconnectInfo } from '../../proxy/ports/framed-socket.js';
import { encodeFrame } from '../../proxy/ports/framed.js';
import { parseSocketAddress } from '../../proxy/ports/socket-address.js';
import { CollectingSink, frameOf, lengthOnly, Peer, portOf, until, withTimeout } from './support.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function listening(
  vnetHdr = false,
  highWaterMark?: number,
): Promise<{ port: FramedSocket; sink: CollectingSink }> {
  const sink = new CollectingSink();
  const port = new FramedSocket({
    name: 'test-in',
    address: parseSocketAddress('--test', 'listen:127.0.0.1:0'),
    vnetHdr,
    sink,
    highWaterMark,
  });
  await port.start();
  cleanup.push(() => port.close());
  return { port, sink };
}

async function peerOf(port: FramedSocket, vnetHdr = false): Promise<Peer> {
  const connected = once(port, 'connect');
  const peer = await Peer.connect({ host: '127.0.0.1', port: portOf(port.describe()) }, vnetHdr);
  cleanup.push(() => peer.close());
  await withTimeout(connected, 5000, 'for the port to adopt the peer');
  return peer;
}

describe('FramedSocket: listening side', () => {
  it('decodes frames from a peer and reports the end of each read chunk', async () => {
    const { port, sink } = await listening(true);
    const peer = await peerOf(port);
    await peer.write(Buffer.concat([frameOf('\x01\x02eth', 2), frameOf('second', 0)]));
    await sink.waitFor(2);
    expect(sink.frames.map((f) => [f.frame.toString('latin1'), f.start])).toEqual([
      ['\x01\x02eth', 2],
      ['second', 0],
    ]);
    expect(sink.chunkEnds).toBeGreaterThan(0);
    expect(port.counters.connects).toBe(1);
  });

  it('a new peer replaces the current one; a frame cut mid-way by the old peer is counted truncated', async () => {
    const { port, sink } = await listening();
    const first = await peerOf(port);
    await first.write(frameOf('0123456789').subarray(0, 8));
    await until(() => port.counters.bytesIn === 8, 5000, 'for the partial frame to be read');
    const disconnected = once(port, 'disconnect');
    const second = await peerOf(port);
    const [info] = (await disconnected) as [DisconnectInfo];
    expect(info.reason).toBe('replaced');
    await withTimeout(first.closed, 5000, 'for the replaced peer to be closed');
    await second.write(frameOf('from-second'));
    await sink.waitFor(2);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['from-second']);
    expect(port.counters.replaced).toBe(1);
    expect(sink.rejects).toEqual([{ reason: 'truncated', length: 8 }]);
  });

  it('an oversized length closes only that connection, and the listener accepts a reconnect', async () => {
    const { port, sink } = await listening();
    const bad = await peerOf(port);
    const disconnected = once(port, 'disconnect');
    await bad.write(Buffer.concat([frameOf('before'), lengthOnly(1_000_000), Buffer.alloc(100, 0xff)]));
    const [info] = (await withTimeout(disconnected, 5000, 'for the disconnect')) as [DisconnectInfo];
    expect(info.reason).toBe('oversized');
    await withTimeout(bad.closed, 5000, 'for the bad peer to be closed');
    const good = await peerOf(port);
    await good.write(frameOf('after'));
    await sink.waitFor(3);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['before', 'after']);
    expect(sink.rejects).toEqual([{ reason: 'oversized', length: 1_000_000 }]);
  });

  it('output written before any peer connects is delivered in order when one does', async () => {
    const { port } = await listening(true);
    port.write(encodeFrame(Buffer.from('one'), true, 1));
    port.write(encodeFrame(Buffer.from('two'), true, 0));
    expect(port.backlog).toBe(2 * (8 + 3));
    const peer = await peerOf(port, true);
    await peer.sink.waitFor(2);
    expect(peer.sink.frames).toEqual([
      { frame: Buffer.from('one'), start: 1 },
      { frame: Buffer.from('two'), start: 0 },
    ]);
  });

  it('keeps write order under backpressure and emits drain once the peer reads again', async () => {
    const { port } = await listening(false, 64 * 1024);
    const peer = await peerOf(port);
    peer.socket.pause();
    // Loopback kernel buffers absorb a few MB before Node has to hold anything: write well beyond that.
    const count = 12_000;
    let refused = 0;
    for (let i = 0; i < count; i++) {
      const body = Buffer.alloc(1448, i & 0xff);
      body.writeUInt32BE(i, 0);
      if (!port.write(encodeFrame(body, false))) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    expect(port.backlog).toBeGreaterThan(64 * 1024);
    const drained = once(port, 'drain');
    peer.socket.resume();
    await withTimeout(drained, 10_000, 'for drain');
    await peer.sink.waitFor(count, 10_000);
    const order = peer.sink.frames.map((f) => f.frame.readUInt32BE(0));
    expect(order).toEqual(Array.from({ length: count }, (_, i) => i));
  });

  it('listens on a unix socket, replacing a stale socket file, and removes it on close', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colo-framed-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'in.sock');
    // A process killed while listening leaves its socket file behind (a clean close would unlink it).
    const script = `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
    expect(fs.statSync(file).isSocket()).toBe(true);

    const sink = new CollectingSink();
    const port = new FramedSocket({
      name: 'unix-in',
      address: parseSocketAddress('--test', `listen:unix:${file}`),
      vnetHdr: false,
      sink,
    });
    await port.start();
    const peer = await Peer.connect({ path: file });
    cleanup.push(() => peer.close());
    await peer.write(frameOf('over-unix'));
    await sink.waitFor(1);
    expect(sink.frames[0].frame.toString()).toBe('over-unix');
    await port.close();
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('FramedSocket: connecting side', () => {
  it('retries with backoff until the peer listens, then reconnects after the peer drops it', async () => {
    // Reserve a free port, then free it so the first attempts are refused.
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const portNumber = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const sink = new CollectingSink();
    const port = new FramedSocket({
      name: 'out',
      address: parseSocketAddress('--test', `connect:127.0.0.1:${portNumber}`),
      vnetHdr: false,
      sink,
      retryInitialMs: 20,
      retryMaxMs: 80,
    });
    cleanup.push(() => port.close());
    const ready = port.start();
    port.write(encodeFrame(Buffer.from('queued-before-connect'), false));

    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => accepted.push(s));
    cleanup.push(() => {
      for (const s of accepted) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    // Let at least one attempt fail first: wait for the failure counter rather than a fixed delay.
    await until(() => port.counters.connectFailures > 0, 5000, 'for a refused attempt');
    server.listen(portNumber, '127.0.0.1');
    await withTimeout(ready, 5000, 'for the first connect');
    expect(port.connected).toBe(true);
    await until(() => accepted.length === 1, 5000, 'for the server side');
    const first = Peer.adopt(accepted[0]);
    await first.sink.waitFor(1);
    expect(first.texts()).toEqual(['queued-before-connect']);

    const reconnected = once(port, 'connect');
    accepted[0].destroy();
    await withTimeout(reconnected, 5000, 'for the reconnect');
    expect(port.counters.connects).toBe(2);
    await until(() => accepted.length === 2, 5000, 'for the second server-side socket');
    const second = Peer.adopt(accepted[1]);
    await second.write(frameOf('hello-after-reconnect'));
    await sink.waitFor(1);
    expect(sink.frames[0].frame.toString()).toBe('hello-after-reconnect');
  });
});
