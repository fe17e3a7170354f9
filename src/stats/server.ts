import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ConfigError } from '../config/errors.js';
import type { ColoMetrics } from './metrics.js';
import { readPassthroughBody, type PassthroughControl } from './passthrough-control.js';

export interface StatsServerOptions {
  host: string;
  /** 0 picks a free port; the bound one is in the result. */
  port: number;
  metrics: ColoMetrics;
  /** Extra fields for /stats (e.g. socket states, configuration); merged over metrics.snapshot(). */
  status?: () => object;
  /** The pass-through rules: listed in /stats and at /passthrough, replaced by PUT /passthrough on loopback. */
  passthrough?: PassthroughControl;
}

export interface StatsServer {
  readonly host: string;
  readonly port: number;
  /** Stops listening and ends open keep-alive connections; resolves when the server is closed. */
  close(): Promise<void>;
}

/**
 * Serves GET /metrics (Prometheus text, the process and Node.js metrics included) and GET /stats (JSON)
 * over plain HTTP, and with `passthrough` GET and PUT /passthrough (src/stats/passthrough-control.ts).
 * Anything else is 404, a method other than GET/HEAD is 405; a failing status() or registry is a 500 with
 * the message, and the server keeps serving.
 */
export async function startStatsServer(options: StatsServerOptions): Promise<StatsServer> {
  const { metrics, status } = options;
  metrics.collectProcessMetrics();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => fail(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/passthrough' && options.passthrough !== undefined) {
      const answer = await readPassthroughBody(req, options.passthrough, options.host);
      send(res, answer.status, 'application/json; charset=utf-8', JSON.stringify(answer.body) + '\n');
      return;
    }
    if (path !== '/metrics' && path !== '/stats') {
      send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /stats\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      const body = await metrics.registry.metrics();
      send(res, 200, metrics.registry.contentType, body, req.method === 'HEAD');
      return;
    }
    // status() first: it may refresh gauges from live state that the snapshot then reports.
    const extra = status?.() ?? {};
    const rules = options.passthrough === undefined ? {} : { passthrough: options.passthrough.list() };
    const body = { ...metrics.snapshot(), ...extra, ...rules };
    send(res, 200, 'application/json; charset=utf-8', JSON.stringify(body) + '\n', req.method === 'HEAD');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return {
    host: options.host,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, code: number, contentType: string, body: string, headOnly = false): void {
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(headOnly ? undefined : body);
}

function fail(res: ServerResponse, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, 500, 'text/plain; charset=utf-8', `stats error: ${message}\n`);
}

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses the `--metrics` flag: `PORT`, `HOST:PORT` or `[IPV6]:PORT`. A bare port listens on loopback
 * only (statistics are not for the world unless asked). Throws ConfigError naming the flag otherwise.
 */
export function parseListenAddress(value: string, flag = '--metrics'): ListenAddress {
  const expected = 'PORT, HOST:PORT or [IPV6]:PORT with PORT in 0..65535';
  const bad = (): never => {
    throw new ConfigError(flag, expected, value);
  };
  const text = value.trim();
  let host = '127.0.0.1';
  let portText = text;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') bad();
    host = text.slice(1, close);
    if (isIP(host) !== 6) bad();
    portText = text.slice(close + 2);
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    // A bare IPv6 address has more colons: it must be bracketed so its port is unambiguous.
    if (host === '' || host.includes(':') || !/^[A-Za-z0-9.-]+$/.test(host)) bad();
  }
  if (!/^\d{1,5}$/.test(portText)) bad();
  const port = Number(portText);
  if (port > 65535) bad();
  return { host, port };
}
