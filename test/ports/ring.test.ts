import { afterAll, beforeAll, expect, it } from 'vitest';
import { ringCaptureAvailable } from '../../proxy/ports/packet-ring.js';
import { createNetns, deleteNetns, type Netns } from '../support/netns.js';
import { describeWith, hasCommand, isRoot } from '../support/prerequisites.js';

/**
 * The AF_PACKET ring port on a veth pair inside a namespace of its own. Each scenario runs in a child process
 * in the namespace (test/ports/ring-peer.ts) and prints what it saw. The sending end gets a tbf qdisc for the
 * flood scenarios (the port only goes through the qdisc when qdisc bypass is off, as those scenarios set).
 */
describeWith(
  [
    isRoot(),
    hasCommand('ip', 'iproute2'),
    hasCommand('tc', 'iproute2'),
    hasCommand('ethtool', 'ethtool'),
    {
      name: 'packet-ring addon (native/packet-ring)',
      ok: ringCaptureAvailable(),
      fix: 'apt-get install build-essential python3 && npm ci',
    },
  ],
  'AF_PACKET ring port',
  () => {
    let ns: Netns;
    const name = `cologring${process.pid % 100000}`;
    const run = async (scenario: string, count = 0): Promise<Record<string, unknown>> => {
      const out = await ns.exec(process.execPath, '--import', 'tsx', peer, scenario, 'ra', 'rb', String(count));
      return JSON.parse(out.trim().split('\n').pop() as string) as Record<string, unknown>;
    };
    /** A token-bucket qdisc on the sending end, so a flood meets a full device queue (removed by the test). */
    const slowQdisc = (rate: string, burst: string): Promise<string> =>
      ns.exec('tc', 'qdisc', 'replace', 'dev', 'ra', 'root', 'tbf', 'rate', rate, 'burst', burst, 'limit', '30kb');
    beforeAll(async () => {
      ns = await createNetns(name);
      await ns.exec('ip', 'link', 'add', 'ra', 'type', 'veth', 'peer', 'name', 'rb');
      for (const end of ['ra', 'rb']) {
        await ns.exec('ethtool', '-K', end, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
        // Room for the jumbo frame on the wire; the receiving port's own MTU (1500) sizes its ring slots.
        await ns.exec('ip', 'link', 'set', end, 'mtu', '9000');
        await ns.exec('ip', 'link', 'set', end, 'up');
      }
    });
    afterAll(async () => {
      await deleteNetns(name);
    });

    it('carries frames both ways byte-exact and in order, and never captures its own output', async () => {
      const result = await run('roundtrip', 500);
      expect(result).toMatchObject({ aFromB: true, bFromA: true, aReceived: 500, bReceived: 500, ownCaptured: 0 });
      expect(result).toMatchObject({ aOut: 500, bOut: 500, aBypass: 1, bBypass: 0 });
    });

    it('delivers a burst in fewer callbacks than frames, all of them, in order', async () => {
      const result = await run('batch', 2000);
      expect(result.exact).toBe(true);
      expect(result.received).toBe(2000);
      expect(result.batchesIn).toBeLessThan(2000 / 4);
      expect(result.senderBatchesOut).toBeLessThan(2000 / 64);
      expect(result.kernelDrops).toBe(0);
    });

    it('frames a sink keeps stay intact while megabytes more arrive; batches share slab memory', async () => {
      const result = await run('keep', 4000);
      expect(result).toMatchObject({ received: 4000, intact: true, kernelDrops: 0, timesInRun: true });
      // About 2.5 MB: more than one 256 KiB slab, and far fewer memories than batches.
      expect(result.memories).toBeGreaterThan(1);
      expect(result.memories as number).toBeLessThan((result.batchesIn as number) / 2);
    });

    it('delivers an MTU+14 frame and a VLAN-tagged one exactly, and rejects a frame longer than its slot as truncated', async () => {
      const result = await run('sizes');
      expect(result.slotBytes).toBe(2048);
      expect(result).toMatchObject({ fullExact: true, smallExact: true, taggedExact: true, senderErrors: 0 });
      expect(result.received).toEqual([1514, 60, 64]);
      expect(result.rejects).toEqual([{ reason: 'truncated', length: 4000 }]);
      expect(result.truncated).toBe(1);
      expect(result.oversizedWarnings).toHaveLength(1);
      expect(String((result.oversizedWarnings as string[])[0])).toContain(
        'ethtool -K rb tx off tso off gso off gro off',
      );
    });

    it('a flood through a slow qdisc: every accepted frame arrives in order, the rest are counted as refused', async () => {
      await slowQdisc('50mbit', '8kb');
      try {
        for (const scenario of ['backpressure-fits', 'backpressure-overflow']) {
          const result = await run(scenario, 20000);
          expect(result.orderedAndExact).toBe(true);
          expect(result.received).toBe(result.accepted);
          expect(result.framesOut).toBe(result.accepted);
          expect(Number(result.accepted) + Number(result.sendRefused)).toBe(20000);
          expect(result.sendErrors).toBe(0);
          expect(result.kernelDrops).toBe(0);
        }
      } finally {
        await ns.exec('tc', 'qdisc', 'del', 'dev', 'ra', 'root');
      }
    });

    it('close while busy: no sink call after close, queued frames counted, nothing left polling', async () => {
      await slowQdisc('10mbit', '4kb');
      try {
        // The peer prints only at 'beforeExit': a poll that outlived close() would hang it (and fail here).
        const result = await run('close-busy', 20000);
        expect(result.receivedByB).toBe(100);
        expect(result.afterCloseA).toBe(0);
        expect(result.afterCloseB).toBe(0);
        expect(result.sentAfterClose).toBe(false);
        expect(Number(result.senderBlocked)).toBeGreaterThan(0);
        expect(Number(result.discardedAtClose)).toBeGreaterThan(0);
      } finally {
        await ns.exec('tc', 'qdisc', 'del', 'dev', 'ra', 'root');
      }
    }, 30_000);
  },
);

const peer = new URL('./ring-peer.ts', import.meta.url).pathname;
