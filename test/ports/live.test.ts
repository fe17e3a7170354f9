import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FramingRejectReason } from '../../proxy/port.js';
import { liveCaptureAvailable } from '../../proxy/ports/live.js';
import { createNetns, deleteNetns, type Netns } from '../support/netns.js';
import { describeWith, hasCommand, isRoot } from '../support/prerequisites.js';

/**
 * libpcap needs the namespace's interfaces, so the port runs in a child process inside the namespace
 * (test/ports/live-peer.ts): it injects frames on one veth end and reports what the other end captured.
 */
describeWith(
  [
    isRoot(),
    hasCommand('ip', 'iproute2'),
    { name: 'cap (libpcap binding)', ok: liveCaptureAvailable(), fix: 'apt-get install libpcap-dev && npm ci' },
  ],
  'live interface port (libpcap)',
  () => {
    let ns: Netns;
    const name = `cololive${process.pid % 100000}`;
    beforeAll(async () => {
      ns = await createNetns(name);
      await ns.exec('ip', 'link', 'add', 'la', 'type', 'veth', 'peer', 'name', 'lb');
      await ns.exec('ip', 'link', 'set', 'la', 'up');
      await ns.exec('ip', 'link', 'set', 'lb', 'up');
    });
    afterAll(async () => {
      await deleteNetns(name);
    });

    it('delivers injected frames byte-exact and in order, and never captures its own output', async () => {
      const out = await ns.exec(process.execPath, '--import', 'tsx', peer, 'la', 'lb', '500', '1500');
      const result = JSON.parse(out) as PeerResult;
      expect(result.received).toBe(500);
      expect(result.inOrderAndExact).toBe(true);
      expect(result.senderCapturedOwn).toBe(0);
      expect(result.oversizedWarnings).toEqual([]);
    });

    it('warns once, naming the ethtool fix, when a frame exceeds the MTU (offloads on)', async () => {
      const out = await ns.exec(process.execPath, '--import', 'tsx', peer, 'la', 'lb', '3', '100');
      const result = JSON.parse(out) as PeerResult;
      expect(result.received).toBe(3);
      expect(result.oversizedWarnings).toHaveLength(1);
      expect(result.oversizedWarnings[0]).toContain('ethtool -K lb tx off tso off gso off gro off');
    });
  },
);

const peer = new URL('./live-peer.ts', import.meta.url).pathname;

interface PeerResult {
  received: number;
  inOrderAndExact: boolean;
  senderCapturedOwn: number;
  oversizedWarnings: string[];
  rejects: FramingRejectReason[];
}
