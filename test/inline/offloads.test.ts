import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffloadError, parseOffloads } from '../../src/inline/offloads.js';
import { createNetns, deleteNetns, type Netns } from '../support/netns.js';
import { describeWith, hasCommand, isRoot } from '../support/prerequisites.js';

const sample = `Features for veth0:
rx-checksumming: on
tx-checksumming: on
\ttx-checksum-ipv4: off [fixed]
scatter-gather: on
tcp-segmentation-offload: off
generic-segmentation-offload: on
generic-receive-offload: off
large-receive-offload: off [fixed]
`;

describe('parseOffloads', () => {
  it('lists the comparison-breaking features that are on and names the fix', () => {
    const report = parseOffloads('veth0', sample);
    expect(report.enabled).toEqual(['tx-checksumming', 'generic-segmentation-offload']);
    expect(report.fix).toBe('ethtool -K veth0 tx off tso off gso off gro off');
  });

  it('ignores features that do not affect comparison', () => {
    expect(parseOffloads('x', 'scatter-gather: on\nrx-checksumming: on\n').enabled).toEqual([]);
  });
});

describeWith(
  [isRoot(), hasCommand('ethtool', 'ethtool'), hasCommand('ip', 'iproute2')],
  'checkOffloads on veth',
  () => {
    let ns: Netns;
    const name = `colooff${process.pid % 100000}`;
    beforeAll(async () => {
      ns = await createNetns(name);
      await ns.exec('ip', 'link', 'add', 'oa', 'type', 'veth', 'peer', 'name', 'ob');
    });
    afterAll(async () => {
      await deleteNetns(name);
    });

    it('fails on a fresh veth (offloads on by default) naming the interface and the ethtool fix', async () => {
      const check = ns.exec(process.execPath, '--import', 'tsx', '-e', checkScript('oa'));
      await expect(check).rejects.toThrow(/oa has offloads on .*fix: ethtool -K oa tx off tso off gso off gro off/s);
    });

    it('passes once the fix has been applied', async () => {
      await ns.exec('ethtool', '-K', 'ob', 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
      await expect(ns.exec(process.execPath, '--import', 'tsx', '-e', checkScript('ob'))).resolves.toContain('ok');
    });

    it('is an OffloadError in-process too', () => {
      expect(new OffloadError([parseOffloads('z', sample)]).message).toContain('interface z has offloads on');
    });
  },
);

function checkScript(iface: string): string {
  const module = new URL('../../src/inline/offloads.ts', import.meta.url).pathname;
  return `import(${JSON.stringify(module)}).then(m => m.checkOffloads([${JSON.stringify(iface)}])).then(() => console.log('ok'), e => { console.error(e.message); process.exit(1); })`;
}
