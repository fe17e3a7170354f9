import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import { parsePassthroughRules } from '../../compare/passthrough.js';
import { ColoMetrics } from '../../src/stats/metrics.js';
import type { PassthroughControl } from '../../src/stats/passthrough-control.js';
import { registerPassthroughMetrics } from '../../src/stats/passthrough-metrics.js';
import { startStatsServer, type StatsServer } from '../../src/stats/server.js';
import { buildUdp } from '../support/wire-build.js';

const open: StatsServer[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

function controlOf(engine: CompareEngine): PassthroughControl {
  return { list: () => engine.passthroughRules(), replace: (rules) => engine.setPassthrough(rules) };
}

async function start(engine: CompareEngine, host = '127.0.0.1'): Promise<string> {
  const server = await startStatsServer({ host, port: 0, metrics: new ColoMetrics(), passthrough: controlOf(engine) });
  open.push(server);
  return `http://127.0.0.1:${server.port}`;
}

const put = (url: string, body: string) => fetch(url, { method: 'PUT', body });
const mdns = buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 5353, dstPort: 5353, payload: 'x' });

describe('pass-through rules over the control endpoint', () => {
  it('replaces the engine’s rules with PUT, lists them with GET and in /stats', async () => {
    const engine = new CompareEngine();
    const base = await start(engine);
    expect(engine.push('primary', mdns, 0, 0).release).toHaveLength(0);

    const res = await put(`${base}/passthrough`, JSON.stringify(['udp:5353', 'tcp:22,fd00::/8']));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      rules: [
        { rule: 'udp:5353', frames: 0 },
        { rule: 'tcp:22,fd00::/8', frames: 0 },
      ],
    });
    expect(engine.push('primary', mdns, 0, 1).release).toHaveLength(1);

    const listed = (await (await fetch(`${base}/passthrough`)).json()) as { rules: unknown[] };
    expect(listed.rules[0]).toEqual({ rule: 'udp:5353', frames: 1 });
    const stats = (await (await fetch(`${base}/stats`)).json()) as { passthrough: unknown[] };
    expect(stats.passthrough).toEqual(listed.rules);

    expect((await put(`${base}/passthrough`, '[]')).status).toBe(200);
    expect(engine.passthroughRules()).toEqual([]);
  });

  it('refuses a bad rule with the field, the rule and what was expected, and keeps the rules in force', async () => {
    const engine = new CompareEngine();
    const base = await start(engine);
    await put(`${base}/passthrough`, '["tcp:22"]');
    const res = await put(`${base}/passthrough`, JSON.stringify(['udp:53', 'tcp:99999']));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: Record<string, string> };
    expect(body.error).toMatchObject({ field: 'passthrough.1', rule: 'tcp:99999', received: 'tcp:99999' });
    expect(body.error.expected).toMatch(/port N or a range/);
    expect((await put(`${base}/passthrough`, '{"rules": 1}')).status).toBe(400);
    expect((await put(`${base}/passthrough`, 'not json')).status).toBe(400);
    expect(engine.passthroughRules().map((r) => r.rule)).toEqual(['tcp:22']);
  });

  it('refuses PUT when the server listens beyond loopback, and still lists', async () => {
    const engine = new CompareEngine();
    const base = await start(engine, '0.0.0.0');
    const res = await put(`${base}/passthrough`, '["tcp:22"]');
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/only on a loopback address.*0\.0\.0\.0/);
    expect(engine.passthroughRules()).toEqual([]);
    expect((await fetch(`${base}/passthrough`)).status).toBe(200);
  });

  it('answers 404 at /passthrough when the server has no rules to control', async () => {
    const server = await startStatsServer({ host: '127.0.0.1', port: 0, metrics: new ColoMetrics() });
    open.push(server);
    expect((await fetch(`http://127.0.0.1:${server.port}/passthrough`)).status).toBe(404);
  });
});

describe('colo_passthrough_frames_total', () => {
  it('follows the engine’s pass-through totals at each scrape', async () => {
    const engine = new CompareEngine();
    engine.setPassthrough(rulesOf('udp:5353'));
    const registry = new Registry();
    registerPassthroughMetrics(registry, () => engine.stats());
    engine.push('primary', mdns, 0, 0);
    engine.push('secondary', mdns, 0, 0);
    engine.push('primary', mdns, 0, 0);
    const text = await registry.metrics();
    expect(text).toContain('colo_passthrough_frames_total{side="primary"} 2');
    expect(text).toContain('colo_passthrough_frames_total{side="secondary"} 1');
    engine.push('secondary', mdns, 0, 0);
    expect(await registry.metrics()).toContain('colo_passthrough_frames_total{side="secondary"} 2');
  });
});

function rulesOf(...texts: string[]) {
  const parsed = parsePassthroughRules(texts);
  if (!parsed.ok) throw new Error(parsed.error.expected);
  return parsed.value;
}
