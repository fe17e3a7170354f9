import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import { encodeFrame } from '../../proxy/ports/framed.js';
import { parseSocketAddress } from '../../proxy/ports/socket-address.js';
import {
  startCompareService,
  type CompareService,
  type CompareSettings,
  type CompareStatus,
} from '../../src/dropin/compare-service.js';
import { silentLogger } from '../../src/log.js';
import type { MetricsSnapshot } from '../../src/stats/snapshot.js';
import { Peer, portOf, withTimeout } from '../ports/support.js';

export const XEN = {
  init: encodeFrame(Buffer.from('COLO_USERSPACE_PROXY_INIT'), false),
  checkpoint: encodeFrame(Buffer.from('COLO_CHECKPOINT'), false),
};

/** A `colo-proxy compare` child process started with listen:127.0.0.1:0 sockets. */
export class CompareProcess {
  stderr = '';
  endpoints: Record<string, string> = {};
  private exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderr += text;
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts it and waits for the plain ready line, which names the bound ports. */
  static async start(extra: string[], options: { notify?: boolean; metrics?: boolean } = {}): Promise<CompareProcess> {
    const args = [
      'bin/colo-proxy.js',
      'compare',
      '--primary-in',
      'listen:127.0.0.1:0',
      '--secondary-in',
      'listen:127.0.0.1:0',
      '--outdev',
      'listen:127.0.0.1:0',
    ];
    if (options.notify !== false) args.push('--notify-dev', 'listen:127.0.0.1:0');
    if (options.metrics !== false) args.push('--metrics', '0');
    args.push(...extra);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const proc = new CompareProcess(child);
    // Generous: tsx compiles the sources at start, and CI machines may be busy.
    await proc.waitForStderr(/colo-proxy compare: ready (.*)\n/, 60_000);
    const line = /colo-proxy compare: ready (.*)\n/.exec(proc.stderr)?.[1] ?? '';
    for (const pair of line.split(' ')) {
      const eq = pair.indexOf('=');
      proc.endpoints[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    return proc;
  }

  port(name: string): number {
    return portOf(this.endpoints[name]);
  }

  connect(name: string, vnetHdr = false): Promise<Peer> {
    return Peer.connect({ host: '127.0.0.1', port: this.port(name) }, vnetHdr);
  }

  /** GET /stats. */
  async stats(): Promise<StatsJson> {
    const response = await fetch(`http://${this.endpoints.metrics}/stats`);
    return (await response.json()) as StatsJson;
  }

  async metricsText(): Promise<string> {
    return (await fetch(`http://${this.endpoints.metrics}/metrics`)).text();
  }

  /** Polls /stats until `condition` holds (the process has no event to wait on from outside). */
  async statsUntil(condition: (s: StatsJson) => boolean, timeoutMs = 15_000): Promise<StatsJson> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.stats();
    while (!condition(last)) {
      if (Date.now() > deadline) throw new Error(`stats condition not met in ${timeoutMs} ms: ${JSON.stringify(last)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      last = await this.stats();
    }
    return last;
  }

  waitForStderr(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(this.stderr)) {
            this.child.stderr?.off('data', check);
            resolve();
          }
        };
        this.child.stderr?.on('data', check);
        this.child.once('exit', () => reject(new Error(`exited before ${pattern}: ${this.stderr}`)));
        check();
      }),
      timeoutMs,
      `for ${pattern} on stderr`,
    );
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return withTimeout(this.exited, 10_000, 'for the process to exit');
  }
}

/** `colo-proxy compare`'s /stats: the metrics snapshot and what the drop-in adds. */
export type StatsJson = MetricsSnapshot & CompareStatus;

/** In-process `colo-proxy compare` services and the peers a test connected to them. */
export interface LoopbackCompare {
  /** Starts one with every socket, notify-dev included, on an ephemeral loopback port; `settings` win. */
  start(settings?: Partial<CompareSettings>): Promise<CompareService>;
  /** Connects a peer to the socket `name` (primary-in, secondary-in, outdev, notify-dev) of `service`. */
  peer(service: CompareService, name: string): Promise<Peer>;
}

/** Call at the top level of a test file: what it starts and connects is closed after each test. */
export function loopbackCompare(): LoopbackCompare {
  const services: CompareService[] = [];
  const peers: Peer[] = [];
  afterEach(async () => {
    for (const p of peers.splice(0)) p.close();
    for (const s of services.splice(0)) await s.close();
  });
  const any = (flag: string) => parseSocketAddress(flag, 'listen:127.0.0.1:0');
  return {
    async start(settings = {}) {
      const service = await startCompareService(
        {
          primaryIn: any('--primary-in'),
          secondaryIn: any('--secondary-in'),
          outdev: any('--outdev'),
          notifyDev: any('--notify-dev'),
          compareTimeoutMs: 3000,
          expiredScanCycleMs: 1000,
          maxQueueSize: 1024,
          vnetHdr: false,
          metrics: null,
          ...settings,
        },
        silentLogger,
      );
      services.push(service);
      return service;
    },
    async peer(service, name) {
      const p = await Peer.connect({ host: '127.0.0.1', port: portOf(service.endpoints[name]) });
      peers.push(p);
      return p;
    },
  };
}
