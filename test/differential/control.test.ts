import { expect, it } from 'vitest';
import { describeWith, hasCommand } from '../support/prerequisites.js';
import {
  CompareSession,
  defaultVnetHeader,
  freePorts,
  openCompare,
  qemuBinary,
  XEN,
  type ExitStatus,
  type Implementation,
} from '../support/qemu.js';
import { bounded, encodeFrame } from '../support/framed-client.js';
import { implementations, quietTimers, scenarioSuite, tcp, udp, type Scenario } from './scenarios.js';

/**
 * Flush order, queue limits, vnet headers, the Xen notify protocol, the stale-packet timer and bad
 * framing: QEMU's colo-compare vs colo-proxy compare.
 */

const scenarios: Scenario[] = [
  {
    name: 'flush order, UDP',
    about: 'three held datagrams of one flow: QEMU flushes newest-first, colo-proxy in arrival order',
    difference: 'FIFO flushing for UDP/ICMP (QEMU newest-first)',
    frames: { P1: udp('one'), P2: udp('two'), P3: udp('three') },
    steps: [{ send: 'pri', frames: ['P1', 'P2', 'P3'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P3', 'P2', 'P1'], requests: 0 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: ['P1', 'P2', 'P3'], requests: 0 },
    ],
  },
  {
    name: 'flush order, TCP',
    about: 'held segments are flushed in seq order whatever their arrival order',
    frames: { P3: tcp(1006, 'ghi'), P1: tcp(1000, 'abc'), P2: tcp(1003, 'def') },
    steps: [{ send: 'pri', frames: ['P3', 'P1', 'P2'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P1', 'P2', 'P3'], requests: 0 },
    ],
  },
  {
    name: 'flush drops held secondaries',
    about: 'a secondary held at the flush is dropped: a later identical primary finds nothing to match',
    frames: { S: udp('early'), P: udp('early'), P2: udp('next'), S2: udp('next') },
    steps: [
      { send: 'sec', frames: ['S'] },
      { flush: true },
      { send: 'pri', frames: ['P'] },
      { settle: true },
      { flush: true },
    ],
    qemu: [
      { released: [], requests: 0 },
      { released: [], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
  },
  {
    name: 'mismatch then flush, then the flow matches again',
    about: 'after a checkpoint the flow is compared afresh',
    frames: { P1: udp('one'), S1: udp('uno'), P2: udp('two'), S2: udp('two') },
    steps: [
      { send: 'pri', frames: ['P1'] },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { flush: true },
      { send: 'pri', frames: ['P2'] },
      { send: 'sec', frames: ['S2'] },
      { settle: true },
    ],
    qemu: [
      { released: [], requests: 1 },
      { released: ['P1'], requests: 1 },
      { released: ['P1', 'P2'], requests: 1 },
    ],
  },
  {
    name: 'queue overflow (max_queue_size=5)',
    about: 'seven held primaries: QEMU keeps six and loses the seventh silently; colo-proxy keeps all, asks',
    difference: 'overflow keeps the packet and requests a checkpoint (QEMU drops it silently)',
    settings: { maxQueueSize: 5 },
    frames: Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`P${i + 1}`, tcp(1000 + 3 * i, `p${i + 1}x`)])),
    steps: [{ send: 'pri', frames: ['P1', 'P2', 'P3', 'P4', 'P5', 'P6', 'P7'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P1', 'P2', 'P3', 'P4', 'P5', 'P6'], requests: 0 },
    ],
    ours: [
      { released: [], requests: 1 },
      { released: ['P1', 'P2', 'P3', 'P4', 'P5', 'P6', 'P7'], requests: 1 },
    ],
  },
  {
    name: 'vnet headers (vnet_hdr_support=on)',
    about: 'frames carry a vnet field and a 12-byte header; comparison starts after the header',
    settings: { vnet: true },
    frames: {
      PU: udp('hello'),
      SU: udp('hello'),
      PT: tcp(1000, 'abc'),
      ST: tcp(1000, 'abc'),
      PX: udp('other', { srcPort: 5001 }),
      SX: udp('OTHER', { srcPort: 5001 }),
    },
    steps: [
      { send: 'pri', frames: ['PU', 'PT', 'PX'] },
      { send: 'sec', frames: ['SU', 'ST', 'SX'] },
      { settle: true },
      { flush: true },
    ],
    qemu: [
      { released: ['PU', 'PT'], requests: 1 },
      { released: ['PU', 'PT', 'PX'], requests: 1 },
    ],
  },
];

scenarioSuite('differential: flush, queue limit, vnet (QEMU colo-compare vs colo-proxy compare)', scenarios);

/** Run `body` against each implementation concurrently, with a session that is always closed. */
async function each<T>(
  settings: Parameters<typeof openCompare>[1],
  body: (session: CompareSession, impl: Implementation) => Promise<T>,
): Promise<Map<Implementation, T>> {
  const results = await Promise.all(
    implementations.map(async (impl) => {
      const session = await openCompare(impl, { ...quietTimers, ...settings });
      try {
        return [impl, await body(session, impl)] as const;
      } catch (err) {
        const stderr = session.proc.stderr().slice(-3000);
        throw new Error(`${impl}: ${(err as Error).message}\n--- stderr ---\n${stderr}`, { cause: err });
      } finally {
        await session.close();
      }
    }),
  );
  return new Map(results);
}

describeWith([hasCommand(qemuBinary, 'qemu-system-x86')], 'differential: control and faults', () => {
  it('vnet: the header and its length pass through to outdev unchanged', async () => {
    const frame = udp('vnet');
    const results = await each({ vnet: true }, async (s) => {
      s.send('pri', [frame]);
      s.send('sec', [frame]);
      await s.settle();
      return s.released().map((f) => ({ vnetHdrLen: f.vnetHdrLen, data: f.data.toString('hex') }));
    });
    for (const [impl, released] of results) {
      expect(released, impl).toEqual([
        { vnetHdrLen: 12, data: Buffer.concat([defaultVnetHeader, frame]).toString('hex') },
      ]);
    }
  });

  it('notify: INIT is answered each time; an unknown message is refused and the channel still works', async () => {
    const results = await each({}, async (s) => {
      // open() already did its handshakes; do two more around a message neither side knows.
      const repliesBefore = s.notifyMessages(XEN.INIT_REPLY);
      const othersBefore = s.notify.frames.length - repliesBefore;
      await s.notifyBarrier();
      s.sendNotify('COLO_SOMETHING_ELSE');
      await s.notifyBarrier();
      // Each says so on stderr (ours through pino, which writes asynchronously: wait for the line).
      await s.proc.waitForStderr(
        s.proc.impl === 'qemu' ? 'COLO compare got unsupported instruction' : /unsupported message ignored/,
      );
      return {
        replies: s.notifyMessages(XEN.INIT_REPLY) - repliesBefore,
        others: s.notify.frames.filter((f) => f.data.toString('latin1') !== XEN.INIT_REPLY).length - othersBefore,
      };
    });
    for (const [impl, r] of results) expect(r, impl).toEqual({ replies: 2, others: 0 });
  });

  it('stale-packet timer (compare_timeout=500, expired_scan_cycle=200) asks, never releases', async () => {
    const settings = { compareTimeoutMs: 500, expiredScanCycleMs: 200 };
    const results = await each(settings, async (s) => {
      const sent = performance.now();
      s.send('pri', [udp('lonely')]);
      // The first request is an event: wait for it, bounded well above timeout + one scan cycle.
      await s.notify.waitUntil('first DO_CHECKPOINT', () => s.checkpointRequests() >= 1, 3_000);
      const first = s.checkpointTimes()[0] - sent;
      // Whether the timer asks again can only be seen over a window: five scan cycles, in which QEMU
      // asks five more times. The notify barrier then makes sure every request sent in it has arrived.
      await new Promise((r) => setTimeout(r, 5 * settings.expiredScanCycleMs));
      await s.notifyBarrier();
      const requests = s.checkpointRequests();
      await s.barrier();
      const releasedBeforeFlush = s.releasedFrames().length;
      await s.flush();
      return { first, requests, releasedBeforeFlush, releasedAfterFlush: s.releasedFrames().length };
    });
    for (const [impl, r] of results) {
      expect(r.first, `${impl}: not before compare_timeout`).toBeGreaterThanOrEqual(480);
      expect(r.first, `${impl}: soon after compare_timeout`).toBeLessThan(2_500);
      expect(r.releasedBeforeFlush, `${impl}: a timeout releases nothing`).toBe(0);
      expect(r.releasedAfterFlush, `${impl}: the flush releases the held packet`).toBe(1);
    }
    // Deliberate difference: one request per divergence (QEMU: one per timer scan while it lasts).
    const qemu = results.get('qemu');
    if (qemu) expect(qemu.requests).toBeGreaterThanOrEqual(4);
    const ours = results.get('ours');
    if (ours) expect(ours.requests).toBe(1);
  });

  it('a fully consumed secondary: QEMU keeps it and later asks for a timeout checkpoint; colo-proxy drops it', async () => {
    const settings = { compareTimeoutMs: 500, expiredScanCycleMs: 200 };
    const [p1, p2, sAll] = [tcp(1000, 'abc'), tcp(1003, 'def'), tcp(1000, 'abcdef')];
    const results = await each(settings, async (s) => {
      s.send('pri', [p1]);
      s.send('sec', [sAll]);
      await s.barrier();
      s.send('pri', [p2]);
      await s.settle();
      const released = s.releasedFrames().length;
      if (s.proc.impl === 'qemu') {
        await s.notify.waitUntil('timeout DO_CHECKPOINT', () => s.checkpointRequests() >= 1, 3_000);
      } else {
        // Absence over a window: compare_timeout plus five scan cycles, then the notify barrier.
        await new Promise((r) => setTimeout(r, settings.compareTimeoutMs + 5 * settings.expiredScanCycleMs));
        await s.notifyBarrier();
      }
      return { released, requests: s.checkpointRequests() };
    });
    const qemu = results.get('qemu');
    if (qemu) expect(qemu).toEqual({ released: 2, requests: 1 });
    const ours = results.get('ours');
    if (ours) expect(ours).toEqual({ released: 2, requests: 0 });
  });

  it('backpressure on outdev: QEMU sends newest-first, colo-proxy keeps order', async () => {
    const count = 4_000;
    const payload = Buffer.alloc(1448, 0x5a);
    const segments = Array.from({ length: count }, (_, i) => tcp(1000 + i * 1448, '', { payload }));
    const [metricsPort] = await freePorts(1);
    // A queue limit far above the workload: both inputs get 6 MB at once and one may be read far ahead of the
    // other (colo-proxy was seen 1,500 primaries ahead: an overflow checkpoint, not what this test is about).
    const results = await each({ metricsPort, maxQueueSize: 65_536 }, async (s) => {
      // Stop reading outdev: the kernel buffers fill and the compare process must hold what it releases.
      s.out.socket.pause();
      for (let i = 0; i < count; i += 200) {
        s.send('pri', segments.slice(i, i + 200));
        s.send('sec', segments.slice(i, i + 200));
      }
      // A last pair that mismatches: its DO_CHECKPOINT proves every frame before it was read and compared.
      s.send('pri', [udp('end of input')]);
      s.send('sec', [udp('END OF INPUT')]);
      if (s.proc.impl === 'qemu') {
        await s.notify.waitUntil('DO_CHECKPOINT for the last pair', () => s.checkpointRequests() >= 1, 20_000);
      } else {
        // Ours stops reading its inputs while outdev is full, so the last pair is not read yet: wait until
        // its /stats says the inputs were paused.
        await waitForStats(metricsPort, (st) => st.loop.backpressurePauses > 0, 20_000);
      }
      s.out.socket.resume();
      await s.out.waitUntil(`${count} releases`, () => s.releasedFrames().length >= count, 30_000);
      await s.notify.waitUntil('DO_CHECKPOINT for the last pair', () => s.checkpointRequests() >= 1, 20_000);
      const seqs = s.releasedFrames().map((f) => f.readUInt32BE(14 + 20 + 4));
      let inversions = 0;
      for (let i = 1; i < seqs.length; i++) if (seqs[i] < seqs[i - 1]) inversions++;
      return { released: seqs.length, inversions };
    });
    const qemu = results.get('qemu');
    if (qemu) {
      expect(qemu.released).toBe(count);
      expect(qemu.inversions, 'QEMU pops its send queue from the tail when the socket is full').toBeGreaterThan(0);
    }
    const ours = results.get('ours');
    if (ours) expect(ours).toEqual({ released: count, inversions: 0 });
  }, 90_000);

  it('zero-length frame: QEMU aborts; colo-proxy counts it and reads on in step', async () => {
    const after = udp('after');
    const results = await each({}, async (s) => {
      // A zero length is finalised when the next byte arrives, so follow it with a whole frame.
      s.pri.sendRaw(Buffer.concat([encodeFrame(Buffer.alloc(0)), encodeFrame(after)]));
      if (s.proc.impl === 'qemu') {
        const status = await bounded<ExitStatus>('QEMU to exit', 5_000, (done) => {
          void s.proc.exited.then(done);
          return () => {};
        });
        return { status, released: [] as string[], stderr: s.proc.stderr() };
      }
      s.send('sec', [after]);
      await s.settle();
      await s.proc.waitForStderr(/zero-length/);
      const released = s.releasedFrames().map((f) => (f.equals(after) ? 'after' : f.toString('hex')));
      return { status: s.proc.exitStatus(), released, stderr: s.proc.stderr() };
    });
    const qemu = results.get('qemu');
    if (qemu) expect(qemu.status?.signal).toBe('SIGABRT');
    const ours = results.get('ours');
    if (ours) {
      expect(ours.status, 'still running').toBeNull();
      expect(ours.released, 'the frame after the zero-length one is read and matched').toEqual(['after']);
    }
  });

  it('oversized frame: QEMU stops reading that input; colo-proxy closes only that connection', async () => {
    const results = await each({}, async (s) => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(69633, 0);
      s.pri.sendRaw(Buffer.concat([head, Buffer.alloc(69633)]));
      if (s.proc.impl === 'qemu') {
        await s.proc.waitForStderr('oversized packet received');
        await s.notifyBarrier(); // notify is still served
        return { stderr: s.proc.stderr(), running: s.proc.exitStatus() === null, servedAfter: false };
      }
      await s.pri.waitClosed(3_000);
      await s.reopen('pri');
      await s.settle();
      await s.proc.waitForStderr(/oversized/);
      return { stderr: s.proc.stderr(), running: s.proc.exitStatus() === null, servedAfter: true };
    });
    const qemu = results.get('qemu');
    if (qemu) expect(qemu.running).toBe(true);
    const ours = results.get('ours');
    if (ours) {
      expect(ours.running).toBe(true);
      expect(ours.servedAfter).toBe(true);
    }
  });
});

interface StatsJson {
  loop: { backpressurePauses: number };
}

/** Poll ours' /stats (bounded) until `ready` holds: the status endpoint is the event source here. */
async function waitForStats(port: number, ready: (stats: StatsJson) => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as StatsJson;
    if (ready(stats)) return;
    if (performance.now() > deadline) throw new Error(`/stats never satisfied the condition: ${JSON.stringify(stats)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
