import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { Agent } from '../../src/checkpoint/agent.js';
import { linkAgent, type Link } from '../../src/checkpoint/link.js';
import { formatEndpoint, parseEndpoint } from '../../src/checkpoint/transport.js';
import { inlineConfigSchema } from '../../src/config/inline.js';
import { startInlineApp, type InlineApp } from '../../src/inline/app.js';
import { silentLogger } from '../../src/log.js';
import { FakeDriver } from '../checkpoint/fake-driver.js';
import { MemoryApp } from '../support/inline-app.js';
import { buildUdp } from '../support/wire-build.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-app-metrics-'));
let app: InlineApp | null = null;
let agentLink: Link | null = null;
let agent: Agent | null = null;

afterEach(async () => {
  await app?.close();
  await agent?.close();
  await agentLink?.close();
  app = null;
  agent = null;
  agentLink = null;
});

describe('colo-proxy run: the metrics it reports (memory ports, a real coordinator and agent on loopback)', () => {
  it("counts a divergence once and an aborted checkpoint as 'aborted', in /metrics, /stats and the event log", async () => {
    // The secondary: an agent on a fake VM, listening on loopback.
    agent = new Agent({ driver: new FakeDriver(Buffer.from('secondary state')) });
    agentLink = await linkAgent(agent, parseEndpoint('listen:127.0.0.1:0'), { material: null });
    const endpoint = formatEndpoint({ ...agentLink.endpoint, mode: 'connect' });

    // The primary's save hook succeeds (the initial seed) until the test creates `fail`: then its own driver
    // fails mid-checkpoint, the secondary stays, and the checkpoint is aborted rather than failed.
    const fail = join(dir, 'fail');
    const events = join(dir, 'events.ndjson');
    const config = inlineConfigSchema.parse({
      interfaces: { client: 'c0', primary: 'p0', secondary: 's0' },
      checkpoint: {
        endpoint,
        plaintext: true,
        driver: {
          kind: 'exec',
          suspend: 'true',
          save: `test -e '${fail}' && exit 3; printf 'primary state'`,
          resume: 'true',
        },
      },
      offloadCheck: false,
      events,
    });
    const memory = new MemoryApp();
    app = await startInlineApp(config, silentLogger, memory.deps);
    await memory.waitFor((e) => e.event === 'ready', "the secondary's READY");
    expect(app.proxy.mode).toBe('protected');

    writeFileSync(fail, '');
    const udp = (payload: string) =>
      buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload });
    memory.port('primary').sink.onFrame(udp('answer-A'), 0);
    memory.port('secondary').sink.onFrame(udp('answer-B'), 0);
    const finished = await memory.waitFor((e) => e.event === 'checkpoint' && e.ok === false, 'the aborted checkpoint');
    expect(finished.error).toBe('COLO_CKPT_DRIVER');
    // Aborted, not failed: the pair is still protected.
    expect(app.proxy.mode).toBe('protected');

    const status = app.status() as ReturnType<InlineApp['metrics']['snapshot']>;
    expect(status.divergences).toMatchObject({ total: 1, byReason: { payload: 1 }, byProtocol: { udp: 1 } });
    expect(status.divergences.recent.map((d) => [d.reason, d.connection.protocol])).toEqual([['payload', 'udp']]);
    expect(status.checkpoints.requests).toEqual({ total: 1, byReason: { payload: 1 } });
    // The initial seed is the one ok checkpoint.
    expect(status.checkpoints.completed).toEqual({ ok: 1, failed: 0, aborted: 1 });
    // The held primary frame went to the client when the aborted checkpoint ended; the secondary's was dropped.
    expect(status.frames.released).toBe(1);
    expect(status.frames.secondaryDropped).toBe(1);
    expect(memory.port('client').memory.sent).toHaveLength(1);
    const text = await app.metrics.metricsText();
    expect(text).toMatch(/colo_checkpoints_total\{outcome="aborted"\} 1/);
    expect(text).toMatch(/colo_checkpoints_total\{outcome="failed"\} 0/);
    expect(text).toMatch(/colo_divergences_total\{reason="payload",protocol="udp"\} 1/);

    await app.close();
    app = null;
    const logged = readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; outcome?: string });
    expect(logged.filter((e) => e.type === 'checkpoint').map((e) => e.outcome)).toEqual(['ok', 'aborted']);
    expect(logged.filter((e) => e.type === 'divergence')).toHaveLength(1);
  }, 30_000);

  it('exports the secondary as a peer, kernel ring drops per port, the mode, the build and the process', async () => {
    agent = new Agent({ driver: new FakeDriver(Buffer.from('secondary state')) });
    agentLink = await linkAgent(agent, parseEndpoint('listen:127.0.0.1:0'), { material: null });
    const config = inlineConfigSchema.parse({
      interfaces: { client: 'c0', primary: 'p0', secondary: 's0' },
      checkpoint: {
        endpoint: formatEndpoint({ ...agentLink.endpoint, mode: 'connect' }),
        plaintext: true,
        driver: { kind: 'exec', suspend: 'true', save: "printf 'primary state'", resume: 'true' },
      },
      offloadCheck: false,
      metrics: '127.0.0.1:0',
    });
    const memory = new MemoryApp();
    const waitFor = (event: string) => memory.waitFor((e) => e.event === event, `the ${event} event`);
    app = await startInlineApp(config, silentLogger, memory.deps);
    const scrape = async (): Promise<string> =>
      (await fetch(`http://${app!.stats!.host}:${app!.stats!.port}/metrics`)).text();
    await waitFor('ready');
    // A ring port reports what the kernel dropped (added, total): the counter follows each port.
    memory.port('primary').emit('drops', 3, 3);
    memory.port('primary').emit('drops', 2, 5);
    memory.port('client').emit('drops', 7, 7);
    const text = await scrape();
    expect(text).toContain('colo_peer_connected{peer="secondary"} 1');
    expect(text).toContain('colo_capture_drops_total{role="primary"} 5');
    expect(text).toContain('colo_capture_drops_total{role="client"} 7');
    expect(text).toContain('colo_mode{mode="protected"} 1');
    expect(text).toContain(`colo_build_info{version="${packageJson.version}",node="${process.versions.node}"} 1`);
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);

    await agent.close();
    await agentLink.close();
    agent = null;
    agentLink = null;
    await waitFor('secondary-lost');
    const after = await scrape();
    expect(after).toContain('colo_peer_connected{peer="secondary"} 0');
    expect(after).toContain('colo_mode{mode="solo"} 1');
  }, 30_000);
});

process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
