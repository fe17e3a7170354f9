import { InlineLab } from '../support/inline-lab.js';
import { createInlineTopology } from '../support/netns.js';
const topo = await createInlineTopology(79);
const lab = new InlineLab(topo, { checkpointTimerMs: 1500 });
const dumps = [topo.secondary.spawn('tcpdump', ['-i', 'eth0', '-w', '/tmp/dbg/sec.pcap', '-U']), topo.primary.spawn('tcpdump', ['-i', 'eth0', '-w', '/tmp/dbg/pri.pcap', '-U']), topo.client.spawn('tcpdump', ['-i', 'eth0', '-w', '/tmp/dbg/cli.pcap', '-U'])];
try {
  await lab.start();
  const connections = Array.from({ length: 4 }, (_, c) => [`SET key${c} v${c}`, `GET key${c}`, `INCR n${c}`, `INCR n${c}`, 'PING']);
  for (let i = 0; i < 4; i++) {
    const client = lab.client({ kind: 'requests', connections: Array.from({ length: 10 }, () => connections[0]) }, `client${i}`);
    console.log(JSON.stringify(await lab.clientResult(client, 30000)).slice(0, 100));
  }
  await new Promise((r) => setTimeout(r, 2000));
  console.log((await lab.guestStatus('primary')).requests, (await lab.guestStatus('secondary')).requests);
  console.log(lab.proxyEvents('divergence').length, lab.proxy.events.map((e) => `${e.event}:${String(e.reason ?? '')}:${e.time}`).join(' '));
} finally {
  for (const d of dumps) d.kill('SIGINT');
  await lab.stop(true);
  console.log(lab.dir);
  await topo.destroy();
}
