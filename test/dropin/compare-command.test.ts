import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildUdp } from '../support/wire-build.js';
import { encodeFrame } from '../../proxy/ports/framed.js';
import { frameOf, Peer } from '../ports/support.js';
import { CompareProcess, XEN } from './support.js';

const running: CompareProcess[] = [];
const peers: Peer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const proc of running.splice(0)) await proc.stop();
});

async function start(extra: string[] = [], options: { notify?: boolean } = {}): Promise<CompareProcess> {
  const proc = await CompareProcess.start(extra, options);
  running.push(proc);
  return proc;
}

async function connect(proc: CompareProcess, name: string, vnetHdr = false): Promise<Peer> {
  const peer = await proc.connect(name, vnetHdr);
  peers.push(peer);
  return peer;
}

/** A UDP datagram of one flow; `flow` picks the source port (one connection per flow). */
function udp(flow: number, payload: string): Buffer {
  return buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 4000 + flow, dstPort: 53, payload });
}

/** Connects outdev and notify first, then the inputs (the order the QEMU harness uses), and does INIT. */
async function wire(proc: CompareProcess, vnetHdr = false) {
  const out = await connect(proc, 'outdev', vnetHdr);
  const notify = proc.endpoints['notify-dev'] === undefined ? null : await connect(proc, 'notify-dev');
  if (notify !== null) {
    await notify.write(XEN.init);
    await notify.sink.waitFor(1);
    expect(notify.texts()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
  }
  const pri = await connect(proc, 'primary-in');
  const sec = await connect(proc, 'secondary-in');
  return { out, notify, pri, sec };
}

describe('colo-proxy compare: the drop-in over loopback sockets', { timeout: 120_000 }, () => {
  it('serves connect: and unix: addresses; ready only once the connecting side is connected', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colo-compare-'));
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const port = (server.address() as net.AddressInfo).port;
    try {
      const primaryPath = path.join(dir, 'pri.sock');
      const proc = await start(
        ['--outdev', `connect:127.0.0.1:${port}`, '--primary-in', `listen:unix:${primaryPath}`],
        {
          notify: false,
        },
      );
      const [socket] = (await accepted) as [net.Socket];
      const out = Peer.adopt(socket);
      peers.push(out);
      expect(proc.endpoints['primary-in']).toBe(primaryPath);
      const pri = await Peer.connect({ path: primaryPath });
      peers.push(pri);
      const sec = await connect(proc, 'secondary-in');
      await pri.write(frameOf(udp(9, 'via-unix')));
      await sec.write(frameOf(udp(9, 'via-unix')));
      await out.sink.waitFor(1);
      expect(out.sink.frames[0].frame.equals(udp(9, 'via-unix'))).toBe(true);
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a bad address with exit code 2 and a message naming the flag', async () => {
    const child = spawn(
      process.execPath,
      [
        'bin/colo-proxy.js',
        'compare',
        '--primary-in',
        'listen:127.0.0.1:0',
        '--secondary-in',
        'tcp:1',
        '--outdev',
        'listen:127.0.0.1:0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (t: Buffer) => (stderr += t.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(2);
    expect(stderr).toMatch(/--secondary-in/);
  });

  it('releases a matched pair, asks once per divergence (coalesced while outstanding), flushes on COLO_CHECKPOINT', async () => {
    const proc = await start();
    const { out, notify, pri, sec } = await wire(proc);

    await pri.write(frameOf(udp(1, 'same')));
    await sec.write(frameOf(udp(1, 'same')));
    await out.sink.waitFor(1);
    expect(out.sink.frames[0].frame.equals(udp(1, 'same'))).toBe(true);

    // Two flows diverge: one DO_CHECKPOINT, the second divergence is coalesced into it.
    await pri.write(Buffer.concat([frameOf(udp(2, 'pri-A')), frameOf(udp(3, 'pri-B'))]));
    await sec.write(Buffer.concat([frameOf(udp(2, 'sec-A')), frameOf(udp(3, 'sec-B'))]));
    await notify!.sink.waitFor(2);
    expect(notify!.texts()[1]).toBe('DO_CHECKPOINT');
    const before = await proc.statsUntil((s) => s.loop.checkpointRequestsCoalesced === 1);
    expect(before.loop.checkpointRequestsSent).toBe(1);
    expect(before.checkpoints.requests.byReason).toEqual({ payload: 2 });

    await notify!.write(XEN.checkpoint);
    await out.sink.waitFor(3);
    // Held primary frames go out in arrival order (FIFO; QEMU sends non-TCP newest-first).
    expect(out.sink.frames.slice(1).map((f) => f.frame)).toEqual([udp(2, 'pri-A'), udp(3, 'pri-B')]);
    const after = await proc.statsUntil((s) => s.loop.flushes === 1);
    expect(after.frames.released).toBe(3);
    expect(after.frames.secondaryDropped).toBe(3);
    expect(notify!.texts()).toEqual(['COLO_COMPARE_GET_XEN_INIT', 'DO_CHECKPOINT']);

    // After the flush a new divergence asks again.
    await pri.write(frameOf(udp(4, 'x')));
    await sec.write(frameOf(udp(4, 'y')));
    await notify!.sink.waitFor(3);
    expect(notify!.texts()[2]).toBe('DO_CHECKPOINT');
    const metrics = await proc.metricsText();
    expect(metrics).toMatch(/colo_checkpoint_requests_total\{reason="payload"\} 3/);
    expect(metrics).toMatch(/colo_frames_released_total 3/);
  });

  it('keeps each frame its own vnet_hdr_len on outdev with --vnet-hdr-support', async () => {
    const proc = await start(['--vnet-hdr-support']);
    const { out, pri, sec } = await wire(proc, true);
    const vnet10 = Buffer.concat([Buffer.alloc(10, 0), udp(1, 'v10')]);
    const vnet12 = Buffer.concat([Buffer.alloc(12, 0), udp(2, 'v12')]);
    await pri.write(Buffer.concat([encodeFrame(vnet10, true, 10), encodeFrame(vnet12, true, 12)]));
    // The secondary's vnet header length may differ: it is not compared.
    await sec.write(encodeFrame(udp(1, 'v10'), true, 0));
    await sec.write(encodeFrame(Buffer.concat([Buffer.alloc(10, 0), udp(2, 'v12')]), true, 10));
    await out.sink.waitFor(2);
    expect(out.sink.frames).toEqual([
      { frame: vnet10, start: 10 },
      { frame: vnet12, start: 12 },
    ]);
    // SIGTERM: every socket closed, exit status 0.
    running.splice(running.indexOf(proc), 1);
    expect(await proc.stop()).toBe(0);
    expect(proc.stderr).toMatch(/"msg":"shutting down"/);
  });

  it('without --notify-dev a checkpoint request is logged and counted, and a local flush releases after compare_timeout', async () => {
    const proc = await start(['--compare-timeout', '300', '--expired-scan-cycle', '50'], { notify: false });
    const { out, pri, sec } = await wire(proc);
    await pri.write(frameOf(udp(1, 'mine')));
    await sec.write(frameOf(udp(1, 'yours')));
    await proc.waitForStderr(/no --notify-dev/);
    const held = await proc.statsUntil((s) => s.loop.checkpointRequestsUnanswered === 1);
    expect(held.frames.released).toBe(0);
    await out.sink.waitFor(1);
    expect(out.sink.frames[0].frame.equals(udp(1, 'mine'))).toBe(true);
    const flushed = await proc.statsUntil((s) => s.loop.localFlushes === 1);
    expect(flushed.frames.secondaryDropped).toBe(1);
  });

  it('a stale primary frame asks for a timeout checkpoint with short timers', async () => {
    const proc = await start(['--compare-timeout', '200', '--expired-scan-cycle', '50']);
    const { notify, pri } = await wire(proc);
    await pri.write(frameOf(udp(1, 'alone')));
    await notify!.sink.waitFor(2, 5000);
    expect(notify!.texts()[1]).toBe('DO_CHECKPOINT');
    const s = await proc.statsUntil((x) => x.checkpoints.requests.total === 1);
    expect(s.checkpoints.requests.byReason).toEqual({ timeout: 1 });
  });
});
