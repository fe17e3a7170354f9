import { afterAll, beforeAll, expect, it } from 'vitest';
import { createInlineTopology, type InlineTopology } from './support/netns.js';
import { describeWith, hasCommand, isRoot } from './support/prerequisites.js';

describeWith([isRoot(), hasCommand('ip', 'iproute2'), hasCommand('ethtool', 'ethtool')], 'inline test topology', () => {
  let topo: InlineTopology;
  beforeAll(async () => {
    topo = await createInlineTopology(71);
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('gives both VMs the same IP and MAC, and offloads are off on every endpoint', async () => {
    for (const vm of [topo.primary, topo.secondary]) {
      const addr = await vm.exec('ip', '-o', 'addr', 'show', 'dev', topo.endpointIface);
      expect(addr).toContain(`${topo.vmIp}/24`);
      const linkInfo = await vm.exec('ip', '-o', 'link', 'show', 'dev', topo.endpointIface);
      expect(linkInfo).toContain(topo.vmMac);
      const features = await vm.exec('ethtool', '-k', topo.endpointIface);
      expect(features).toMatch(/tcp-segmentation-offload: off/);
      expect(features).toMatch(/tx-checksumming: off/);
    }
  });

  it('isolates the client from the VMs until something forwards between the proxy interfaces', async () => {
    await expect(topo.client.exec('ping', '-c', '1', '-W', '1', topo.vmIp)).rejects.toThrow();
    const ifaces = await topo.proxy.exec('ip', '-o', 'link', 'show');
    for (const name of Object.values(topo.proxyIfaces)) expect(ifaces).toContain(`${name}@`);
  });

  it('removes every namespace on destroy', async () => {
    const other = await createInlineTopology(72);
    await other.destroy();
    const { execFileSync } = await import('node:child_process');
    const list = execFileSync('ip', ['netns', 'list']).toString();
    expect(list).not.toContain(other.tag);
  });
});
