import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { seqLe, seqLt } from '../../compare/seq.js';
import { ringCaptureAvailable } from '../../proxy/ports/packet-ring.js';
import { ensureGuest, type GuestImage } from '../support/guest-vm.js';
import { SegmentCapture } from '../support/inline-lab.js';
import type { Event } from '../support/lab-process.js';
import { describeWith, hasCommand, isRoot } from '../support/prerequisites.js';
import { createVmTopology, VmLab, type VmLabOptions, type VmTopology } from '../support/vm-lab.js';
import type { Reply } from './http-reply.js';

/**
 * colo-proxy protecting stock QEMU guests (issue 13): real guest kernels under TCG on taps, `colo-proxy run`
 * inline between a client namespace and the two taps, the qemu driver doing every checkpoint, and the
 * secondary's agent owning the secondary QEMU. Each test boots its own primary; the secondary only ever runs
 * a state loaded from the primary.
 */

const www = new URL('../../vm/guest/www/', import.meta.url).pathname;
const indexSha = createHash('sha256')
  .update(readFileSync(join(www, 'index.html')))
  .digest('hex');

describeWith(
  [
    isRoot(),
    hasCommand('qemu-system-x86_64', 'qemu-system-x86'),
    hasCommand('cpio', 'cpio'),
    hasCommand('ethtool', 'ethtool'),
    hasCommand('tcpdump', 'tcpdump'),
    hasCommand('curl', 'curl'),
    {
      name: 'packet-ring addon (native/packet-ring)',
      ok: ringCaptureAvailable(),
      fix: 'apt-get install build-essential python3 && npm ci',
    },
  ],
  'real QEMU guests protected by colo-proxy (TCG, namespaces)',
  () => {
    let image: GuestImage;
    let topo: VmTopology | null = null;
    let lab: VmLab | null = null;
    let subnet = 90;

    beforeAll(async () => {
      image = await ensureGuest();
    }, 600_000);

    afterEach(async (context) => {
      await lab?.finish(context.task.result?.state === 'fail');
      await topo?.destroy();
      lab = null;
      topo = null;
    });

    async function startLab(options: VmLabOptions): Promise<VmLab> {
      topo = await createVmTopology(subnet++);
      lab = new VmLab(topo, image, options);
      await lab.start();
      return lab;
    }

    async function framesIn(l: VmLab): Promise<{ primary: number; secondary: number }> {
      const stats = JSON.parse(await l.stats('/stats')) as { frames: { in: { primary: number; secondary: number } } };
      return stats.frames.in;
    }

    const checkpoints = (l: VmLab): Event[] => l.proxyEvents('checkpoint').filter((e) => e.seeding !== true);

    it('matched traffic: static pages over many connections arrive byte-exact, no checkpoint but the timer', async () => {
      const l = await startLab({ precopy: true, checkpointTimerMs: 1500 });
      const paths = Array.from({ length: 24 }, () => '/index.html');
      const first = await l.clientResult<{ replies: Reply[] }>(l.client({ kind: 'get', paths }), 120_000);
      // At least one timer checkpoint must fall inside the traffic, so the matching is shown across it.
      const before = checkpoints(l).length;
      await l.proxy.waitFor(
        (e) => e.event === 'checkpoint' && e.seeding !== true && checkpoints(l).length > before,
        20_000,
        'a timer checkpoint',
      );
      const second = await l.clientResult<{ replies: Reply[] }>(l.client({ kind: 'get', paths }, 'client-2'), 120_000);
      for (const reply of [...first.replies, ...second.replies]) {
        expect(reply.status).toBe(200);
        expect(reply.sha256).toBe(indexSha);
      }
      expect(new Set([...first.replies, ...second.replies].map((r) => r.localPort)).size).toBe(48);
      expect(l.proxyEvents('divergence')).toEqual([]);
      expect(checkpoints(l).length).toBeGreaterThan(0);
      for (const done of checkpoints(l)) {
        expect(done.reason).toBe('timer');
        expect(done.ok).toBe(true);
      }
    }, 300_000);

    it('nondeterminism: the random CGI diverges, a checkpoint follows, and the guests are clones after it', async () => {
      const l = await startLab({ taps: 1 });
      const random = await l.clientResult<{ replies: Reply[] }>(
        l.client({ kind: 'get', paths: ['/cgi-bin/random'] }),
        60_000,
      );
      expect(random.replies[0].status).toBe(200);
      const divergence = await l.proxy.waitFor((e) => e.event === 'divergence', 20_000, 'the random reply to diverge');
      const done = await l.proxy.waitFor(
        (e) => e.event === 'checkpoint' && e.seeding !== true && e.ok === true,
        60_000,
        'the checkpoint after the divergence',
      );
      expect(done.reasons).toContain(divergence.reason);
      const divergencesAfter = l.proxyEvents('divergence').length;

      // The reply the client got was the primary's, and the secondary now holds it too (same memory): reading it
      // back, counting, and serving files all match.
      const after = await l.clientResult<{ replies: Reply[] }>(
        l.client(
          {
            kind: 'get',
            paths: ['/cgi-bin/last-random', '/cgi-bin/counter', '/cgi-bin/counter', '/cgi-bin/counter', '/index.html'],
          },
          'client-after',
        ),
        120_000,
      );
      const [last, c1, c2, c3, page] = after.replies;
      expect(last.body?.trim()).toBe(random.replies[0].body?.trim());
      expect([c1, c2, c3].map((r) => Number(r.body?.trim()))).toEqual([1, 2, 3]);
      expect(page.sha256).toBe(indexSha);
      expect(l.proxyEvents('divergence').length).toBe(divergencesAfter);
    }, 300_000);

    it('output gate: no primary frame reaches the client between the primary stop and LOADED', async () => {
      const l = await startLab({ precopy: true, checkpointTimerMs: 700 });
      const capture = new SegmentCapture(l.topo.client, 'eth0', 80, l.path('capture-client.log'));
      await capture.start();
      try {
        const load = l.client({ kind: 'load', path: '/index.html', durationMs: 6000, concurrency: 2 });
        const result = await l.clientResult<{ requests: number; errors: number }>(load, 60_000);
        expect(result.errors).toBe(0);
        // Under TCG on a loaded two-core host a request can take over a second: what makes the test count is
        // that held frames met checkpoints (windows and heldAndReleased below), not how many requests ran.
        expect(result.requests).toBeGreaterThan(0);
      } finally {
        await capture.stop();
      }
      const stops = l.primaryEvents.filter((e) => e.name === 'STOP').map((e) => e.time);
      const starts = l.proxyEvents('checkpoint-start').map((e) => Number(e.time));
      let windows = 0;
      let heldAndReleased = 0;
      for (const done of l.proxyEvents('checkpoint-loaded')) {
        const loadedAt = Number(done.loadedAt);
        const started = Math.max(...starts.filter((t) => t <= loadedAt));
        // The checkpoint's own STOP (the seeding checkpoint's came before the pair was protected).
        const stop = stops.find((t) => t >= started - 1 && t <= loadedAt);
        expect(stop, `a STOP between checkpoint-start ${started} and LOADED ${loadedAt}`).toBeDefined();
        windows++;
        const inside = capture.segments.filter((seg) => seg.time > stop! && seg.time < loadedAt);
        expect(inside, `segments between STOP ${stop} and LOADED ${loadedAt}`).toEqual([]);
        heldAndReleased += Number(done.flushedFrames ?? 0);
      }
      expect(windows).toBeGreaterThanOrEqual(3);
      // The gate really held something at some checkpoint, and what it released kept each connection's order.
      expect(heldAndReleased).toBeGreaterThan(0);
      // Held frames leave in the order the primary sent them: a flow never shows a gap that a later segment
      // fills. (A segment wholly below what the client already got is the primary's retransmission: while the
      // client's ACKs were held its retransmission timer ran.)
      const delivered = new Map<number, number>();
      for (const segment of capture.segments) {
        const end = delivered.get(segment.dstPort);
        if (end !== undefined)
          expect(seqLe(segment.seq, end), `flow ${segment.dstPort}: a gap before ${segment.seq}`).toBe(true);
        if (end === undefined || seqLt(end, segment.end)) delivered.set(segment.dstPort, segment.end);
      }
    }, 300_000);

    it('failover: the primary QEMU is killed mid-download and the same connection completes from the secondary', async () => {
      const l = await startLab({ precopy: true, primaryHealth: true });
      const download = l.client({ kind: 'download', path: '/big.bin', pauseAfter: 4 << 20 });
      const paused = await download.waitFor((e) => e.event === 'paused', 60_000, 'the download to pause');
      l.primary.signal('SIGKILL');
      await l.proxy.waitFor((e) => e.event === 'mode' && e.mode === 'failover', 20_000, 'failover');
      download.signal('SIGUSR2');
      const result = await l.clientResult<{ bytes: number; sha256: string; localPort: number }>(download, 120_000);
      expect(result.bytes).toBe(16 << 20);
      expect(result.sha256).toBe(image.manifest.bigBinSha256);
      expect(result.localPort).toBe(paused.localPort);
    }, 300_000);

    it('secondary lost: solo while it is gone, transfers finish, and protection returns with a new secondary', async () => {
      // The loss is noticed at the next timer checkpoint (its SUSPEND fails): 2.5 s keep the download's handshake
      // inside that window, so the dead secondary never answers its SYN. The download pauses after 1 MiB, and the
      // rest of it goes through the new secondary: a connection whose handshake it never sent. The lab's compare
      // timeout stays: a freshly loaded QEMU under TCG can trail by seconds on a loaded host, which a 1 s timeout
      // turned into divergences.
      const l = await startLab({ precopy: true, checkpointTimerMs: 2500 });
      const pids = l.secondaryQemuPids();
      expect(pids.length).toBeGreaterThan(0);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      const download = l.client({ kind: 'download', path: '/big.bin', pauseAfter: 1 << 20 });
      const solo = await l.proxy.waitFor((e) => e.event === 'mode' && e.mode === 'solo', 30_000, 'solo mode');
      const sinceSolo = l.proxy.events.indexOf(solo);
      await l.proxy.waitForNext(sinceSolo, (e) => e.event === 'ready', 120_000, 'protection to return');
      const protectedAgain = await l.proxy.waitForNext(
        sinceSolo,
        (e) => e.event === 'mode' && e.mode === 'protected',
        10_000,
        'protected again',
      );
      const newPids = l.secondaryQemuPids();
      expect(newPids.some((pid) => !pids.includes(pid))).toBe(true);
      await download.waitFor((e) => e.event === 'paused', 60_000, 'the download to pause');
      const framesBefore = await framesIn(l);
      download.signal('SIGUSR2');
      const result = await l.clientResult<{ bytes: number; sha256: string }>(download, 120_000);
      expect(result.sha256).toBe(image.manifest.bigBinSha256);
      const after = await l.clientResult<{ replies: Reply[] }>(
        l.client({ kind: 'get', paths: ['/index.html', '/index.html', '/cgi-bin/counter'] }, 'client-after'),
        120_000,
      );
      expect(after.replies.map((r) => r.status)).toEqual([200, 200, 200]);
      // The new secondary got the client's frames and answered them as the primary did: about as many frames.
      // (Left waiting for its ISN, the rewriter held them all, the secondary sent next to nothing, and only
      // checkpoints released the primary's output, unverified.)
      const framesAfter = await framesIn(l);
      const primary = framesAfter.primary - framesBefore.primary;
      const secondary = framesAfter.secondary - framesBefore.secondary;
      // At least half the file left the primary after the pause (the rest may have filled the client's buffer).
      expect(primary).toBeGreaterThan((8 << 20) / 1514);
      expect(secondary).toBeGreaterThan(primary / 2);
      // From the re-seed on, the new secondary matches: the rest of the download and the later requests.
      const since = Number(protectedAgain.time);
      expect(l.proxyEvents('divergence').filter((e) => Number(e.time) >= since)).toEqual([]);
    }, 300_000);
  },
);
