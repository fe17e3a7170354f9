/**
 * `colo-proxy compare` under hostile input (issue 17): held frames stay within their bound when the notify
 * peer never answers (finding 3), divergences are logged with a rate limit (finding 4), and SIGTERM flushes
 * every held primary frame to outdev or says how many could not go (finding 5).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildUdp } from '../support/wire-build.js';
import { frameOf, withTimeout, type Peer } from '../ports/support.js';
import { CompareProcess, XEN } from './support.js';

const running: CompareProcess[] = [];
const peers: Peer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const proc of running.splice(0)) await proc.stop();
});

async function start(extra: string[], options: { notify?: boolean } = {}): Promise<CompareProcess> {
  const proc = await CompareProcess.start(extra, options);
  running.push(proc);
  return proc;
}

async function connect(proc: CompareProcess, name: string): Promise<Peer> {
  const peer = await proc.connect(name);
  peers.push(peer);
  return peer;
}

/** Connects every peer: outdev, notify-dev with the INIT handshake, then primary-in and secondary-in. */
async function wire(proc: CompareProcess): Promise<{ out: Peer; notify: Peer; pri: Peer; sec: Peer }> {
  const out = await connect(proc, 'outdev');
  const notify = await connect(proc, 'notify-dev');
  await notify.write(XEN.init);
  const pri = await connect(proc, 'primary-in');
  const sec = await connect(proc, 'secondary-in');
  return { out, notify, pri, sec };
}

function udp(flow: number, payload: string | Buffer): Buffer {
  return buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 4000 + flow, dstPort: 53, payload });
}

/** `count` primary frames over `flows` flows, none with a secondary twin, written as one buffer. */
function untwinned(count: number, flows: number, payload: string | Buffer = 'alone'): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => frameOf(udp(i % flows, payload))));
}

/** Stops the process (SIGTERM), removing it from the afterEach list, and returns its exit status. */
async function stop(proc: CompareProcess): Promise<number | null> {
  running.splice(running.indexOf(proc), 1);
  return proc.stop();
}

describe('colo-proxy compare: bounds, log limits and shutdown', { timeout: 120_000 }, () => {
  it('a silent notify peer: held frames stay within --max-held-frames, the rest released uncompared and counted', async () => {
    const proc = await start(['--max-held-frames', '300', '--expired-scan-cycle', '50']);
    const { out, notify, pri } = await wire(proc);
    await pri.write(untwinned(2000, 3));
    const stats = await proc.statsUntil((s) => s.loop.framesIn.primary === 2000);
    // Each side may hold two thirds of --max-held-frames: 200.
    expect(stats.engine.heldPrimaryPackets).toBeLessThanOrEqual(200);
    expect(stats.engine.heldBoundFlushes['primary-frames']).toBeGreaterThanOrEqual(9);
    expect(stats.engine.heldBoundReleased + stats.engine.heldPrimaryPackets).toBe(2000);
    await out.sink.waitFor(stats.engine.heldBoundReleased);
    await notify.sink.waitFor(2);
    expect(notify.texts()).toEqual(['COLO_COMPARE_GET_XEN_INIT', 'DO_CHECKPOINT']);
    await proc.statsUntil((s) => s.held.frames <= 200 && s.engine.heldBoundReleased > 0);
    const metrics = await proc.metricsText();
    expect(metrics).toMatch(/colo_held_bound_flushes_total\{bound="primary-frames"\} \d+/);
    expect(metrics).toMatch(
      new RegExp(`colo_held_bound_frames_total\\{side="primary"\\} ${stats.engine.heldBoundReleased}`),
    );
    await proc.waitForStderr(/held frames reached their bound/);
  });

  it('logs 1,000 divergences in a few lines and a summary with the exact count held back', async () => {
    const proc = await start([]);
    const { pri, sec } = await wire(proc);
    const flows = 1000;
    await pri.write(Buffer.concat(Array.from({ length: flows }, (_, i) => frameOf(udp(i, 'mine')))));
    await sec.write(Buffer.concat(Array.from({ length: flows }, (_, i) => frameOf(udp(i, 'yours')))));
    const stats = await proc.statsUntil((s) => s.loop.divergences === flows);
    expect(stats.divergences.total).toBe(flows);
    expect(await stop(proc)).toBe(0);
    const lines = proc.stderr.split('\n').filter((l) => /"msg":"divergence: checkpoint/.test(l));
    expect(lines.length).toBeLessThanOrEqual(10);
    const summary = /"kind":"divergence","written":10,"suppressed":(\d+)/.exec(proc.stderr);
    expect(Number(summary?.[1])).toBe(flows - lines.length);
  });

  it('SIGTERM flushes every held primary frame to outdev and says how many', async () => {
    const proc = await start([]);
    const { out, pri } = await wire(proc);
    await pri.write(untwinned(100, 1));
    await proc.statsUntil((s) => s.engine.heldPrimaryPackets === 100);
    expect(out.sink.frames).toHaveLength(0);
    expect(await stop(proc)).toBe(0);
    await out.sink.waitFor(100);
    expect(out.sink.frames.map((f) => f.frame)).toEqual(Array.from({ length: 100 }, () => udp(0, 'alone')));
    expect(proc.stderr).toMatch(/"msg":"shutdown: 100 held primary frames flushed to outdev"/);
  });

  it('SIGTERM with no outdev peer names the held frames it could not deliver', async () => {
    const proc = await start([]);
    const notify = await connect(proc, 'notify-dev');
    await notify.write(XEN.init);
    const pri = await connect(proc, 'primary-in');
    await connect(proc, 'secondary-in');
    await pri.write(untwinned(100, 1));
    await proc.statsUntil((s) => s.engine.heldPrimaryPackets === 100);
    expect(await stop(proc)).toBe(0);
    expect(proc.stderr).toMatch(
      /"flushedFrames":100,.*"outdevConnected":false.*"msg":"shutdown: 100 held primary frames flushed but \d+ output bytes were not delivered: outdev has no peer"/,
    );
  });

  it('a second signal during shutdown exits at once', async () => {
    const proc = await start(['--max-queue-size', '100000']);
    const { out, pri } = await wire(proc);
    // outdev's peer reads nothing: the final flush (about 23 MB, more than loopback TCP buffers take) cannot drain, so shutdown waits.
    out.socket.pause();
    await pri.write(untwinned(16_000, 16, Buffer.alloc(1400, 1)));
    await proc.statsUntil((s) => s.engine.heldPrimaryPackets === 16_000);
    running.splice(running.indexOf(proc), 1);
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
    proc.child.kill('SIGTERM');
    await proc.waitForStderr(/"msg":"shutting down"/);
    proc.child.kill('SIGINT');
    expect(await withTimeout(exited, 1500, 'exit after the second signal')).toBe(130);
    expect(proc.stderr).toMatch(/SIGINT during shutdown: exiting at once/);
  });
});
