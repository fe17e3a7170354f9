import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { ColoMetrics } from '../../src/stats/metrics.js';
import { parseListenAddress, startStatsServer, type StatsServer } from '../../src/stats/server.js';

const open: StatsServer[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

async function start(metrics: ColoMetrics, status?: () => object): Promise<string> {
  const server = await startStatsServer({ host: '127.0.0.1', port: 0, metrics, status });
  open.push(server);
  expect(server.port).toBeGreaterThan(0);
  return `http://127.0.0.1:${server.port}`;
}

describe('stats server', () => {
  it('serves Prometheus text at /metrics with the registry content type', async () => {
    const metrics = new ColoMetrics();
    metrics.recordFramesIn('primary', 42);
    const base = await start(metrics);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    const text = await res.text();
    expect(text).toContain('# TYPE colo_frames_in_total counter');
    expect(text).toContain('colo_frames_in_total{side="primary"} 42');
  });

  it('serves the snapshot merged with status at /stats, and sees later counts', async () => {
    const metrics = new ColoMetrics();
    const base = await start(metrics, () => ({ command: 'compare', mode: 'solo' }));
    metrics.recordCheckpointRequest('timer');
    const res = await fetch(`${base}/stats?pretty=0`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.command).toBe('compare');
    expect(body.mode).toBe('solo'); // status wins over the snapshot's own field
    expect(body.checkpoints).toMatchObject({ requests: { total: 1, byReason: { timer: 1 } } });
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const base = await start(new ColoMetrics());
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metricsx`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 500 when status() throws, and keeps serving', async () => {
    const metrics = new ColoMetrics();
    let broken = true;
    const base = await start(metrics, () => {
      if (broken) throw new Error('status exploded');
      return {};
    });
    const bad = await fetch(`${base}/stats`);
    expect(bad.status).toBe(500);
    expect(await bad.text()).toContain('status exploded');
    broken = false;
    expect((await fetch(`${base}/stats`)).status).toBe(200);
  });

  it('rejects when the port is taken', async () => {
    const base = await start(new ColoMetrics());
    const port = Number(new URL(base).port);
    await expect(startStatsServer({ host: '127.0.0.1', port, metrics: new ColoMetrics() })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });

  it('stops accepting connections after close()', async () => {
    const server = await startStatsServer({ host: '127.0.0.1', port: 0, metrics: new ColoMetrics() });
    const url = `http://127.0.0.1:${server.port}/metrics`;
    expect((await fetch(url)).status).toBe(200);
    await server.close();
    await expect(fetch(url)).rejects.toThrow();
  });
});

describe('parseListenAddress (--metrics)', () => {
  it.each([
    ['9464', { host: '127.0.0.1', port: 9464 }],
    ['0', { host: '127.0.0.1', port: 0 }],
    ['0.0.0.0:9464', { host: '0.0.0.0', port: 9464 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
    [' 127.0.0.1:65535 ', { host: '127.0.0.1', port: 65535 }],
  ])('parses %j', (input, expected) => {
    expect(parseListenAddress(input)).toEqual(expected);
  });

  it.each(['', 'abc', '65536', '127.0.0.1:', ':9464', '::1:9464', '[::1]9464', '[1.2.3.4]:80', 'host:-1', 'a b:1'])(
    'rejects %j with an error naming the flag',
    (input) => {
      expect(() => parseListenAddress(input)).toThrow(ConfigError);
      expect(() => parseListenAddress(input)).toThrow(/"--metrics"/);
    },
  );

  it('names the flag it was given', () => {
    expect(() => parseListenAddress('x', '--stats-listen')).toThrow(/"--stats-listen"/);
  });
});
