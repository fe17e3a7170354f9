/**
 * Checkpoint protocol benchmark: `npm run bench:checkpoint`.
 *
 * The agent runs in a child process (as on a real secondary), the coordinator here; both over loopback TCP.
 * 1. Sync-point round trip: ~2000 checkpoints with an empty state, timed from NEW sent to LOADED received
 *    (NEW/SUSPENDED and SEND/RECEIVED/LOADED: two round trips, no VM work). p50 and p99 in µs.
 * 2. State transfer: the transfer phase (SEND written to RECEIVED read) for 64 MiB and 1 GiB states,
 *    plaintext and mutual TLS, reported as bytes/s (best of a few runs).
 * Knobs: BENCH_CHECKPOINTS (default 2000), BENCH_SIZES (default "64MiB,1GiB"), BENCH_RUNS (default 3),
 * BENCH_TLS_RUNS (default 4). Each figure is the best run: the first also pays for first-touch memory.
 * The last line printed is one JSON object.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/checkpoint/agent.js';
import { Coordinator } from '../src/checkpoint/coordinator.js';
import type { VmDriver } from '../src/checkpoint/driver.js';
import { linkAgent, linkCoordinator } from '../src/checkpoint/link.js';
import { loadControlSecurity } from '../src/checkpoint/tls.js';
import { formatEndpoint, parseEndpoint } from '../src/checkpoint/transport.js';
import { silentLogger } from '../src/log.js';
import { makeCa, makeCert, pkiFiles } from '../test/support/pki.js';
import { percentileOfSorted } from './percentile.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** A VM that costs nothing: only the protocol and the transport are measured. */
class NullDriver implements VmDriver {
  readonly kind = 'null';
  constructor(public state: Buffer = Buffer.alloc(0)) {}
  async suspend(): Promise<void> {}
  async save(): Promise<Buffer> {
    return this.state;
  }
  async load(): Promise<void> {}
  async resume(): Promise<void> {}
}

const timeouts = {
  waitMs: 10_000,
  transferMs: 120_000,
  loadMs: 60_000,
  heartbeatIntervalMs: 500,
  heartbeatLossMs: 10_000,
};

function tlsFiles(dir: string): { ca: string; cert: string; key: string } | null {
  try {
    makeCa(dir, 'bench');
    makeCert(dir, 'bench', 'node');
    return pkiFiles(dir, 'bench', 'node');
  } catch {
    return null;
  }
}

/**
 * Child mode: an agent dialling the coordinator at `endpoint`; serves until stdin closes. The agent dials
 * because a dialled socket reads into a reused buffer (transport.ts), which is what the receiver needs.
 */
async function agentMain(endpoint: string, tls: string | undefined): Promise<void> {
  const material = tls ? await loadControlSecurity({ kind: 'tls', ...JSON.parse(tls) }, silentLogger) : null;
  const agent = new Agent({ driver: new NullDriver(), timeouts, maxStateBytes: 2 * GiB });
  await linkAgent(agent, parseEndpoint(endpoint), { material });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** A coordinator here, listening; the agent in a child process; resolves once the pair is protected. */
async function withPair<T>(
  files: { ca: string; cert: string; key: string } | null,
  driver: NullDriver,
  body: (coordinator: Coordinator) => Promise<T>,
): Promise<T> {
  const material = files ? await loadControlSecurity({ kind: 'tls', ...files }, silentLogger) : null;
  const coordinator = new Coordinator({ driver, timeouts, checkpointTimerMs: null, maxStateBytes: 2 * GiB });
  const ready = new Promise((resolve) => coordinator.once('ready', resolve));
  const link = await linkCoordinator(coordinator, parseEndpoint('listen:127.0.0.1:0'), { material });
  const dial = formatEndpoint({ ...link.endpoint, mode: 'connect' });
  const child = spawn(
    process.execPath,
    [...process.execArgv, process.argv[1], '--agent', dial, files ? JSON.stringify(files) : ''],
    {
      stdio: ['pipe', 'inherit', 'inherit'],
    },
  );
  try {
    await ready;
    return await body(coordinator);
  } finally {
    await coordinator.close();
    await link.close();
    child.stdin!.end();
    child.kill();
  }
}

async function syncPointRtt(count: number): Promise<{ p50: number; p99: number }> {
  return withPair(null, new NullDriver(), async (coordinator) => {
    const samples: number[] = [];
    for (let i = 0; i < count + 100; i++) {
      const t0 = performance.now();
      const outcome = await coordinator.checkpoint('bench');
      const elapsed = performance.now() - t0;
      if (!outcome.ok) throw new Error(`checkpoint failed: ${outcome.error.message}`);
      if (i >= 100) samples.push(elapsed * 1000); // the first 100 warm the JIT and the socket
    }
    samples.sort((a, b) => a - b);
    return { p50: percentileOfSorted(samples, 0.5), p99: percentileOfSorted(samples, 0.99) };
  });
}

async function transfer(
  files: { ca: string; cert: string; key: string } | null,
  size: number,
  runs: number,
): Promise<number> {
  // Filled before connecting: touching a GiB of fresh memory can stall this process for seconds. The seeding
  // checkpoint at connect carries an empty state; the measured ones carry `size` bytes.
  const state = Buffer.alloc(size, 0xa5);
  const driver = new NullDriver();
  return withPair(files, driver, async (coordinator) => {
    driver.state = state;
    let best = 0;
    for (let i = 0; i < runs; i++) {
      const outcome = await coordinator.checkpoint('bench');
      if (!outcome.ok) throw new Error(`checkpoint failed: ${outcome.error.message}`);
      best = Math.max(best, size / ((outcome.durations.transfer as number) / 1000));
    }
    return best;
  });
}

function parseSizes(text: string): number[] {
  return text.split(',').map((s) => {
    const m = /^(\d+)(MiB|GiB)$/.exec(s.trim());
    if (!m) throw new Error(`BENCH_SIZES: "${s}" is not like 64MiB or 1GiB`);
    return Number(m[1]) * (m[2] === 'GiB' ? GiB : MiB);
  });
}

const label = (size: number): string => (size >= GiB ? `${size / GiB}GiB` : `${size / MiB}MiB`);

async function main(): Promise<void> {
  const count = Number(process.env.BENCH_CHECKPOINTS ?? 2000);
  const sizes = parseSizes(process.env.BENCH_SIZES ?? '64MiB,1GiB');
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  // The first run of a size pays the receiver's first touch of its state buffer (seconds for 1 GiB on this VM):
  // the best of the later runs is the steady state a secondary sees checkpoint after checkpoint.
  const tlsRuns = Number(process.env.BENCH_TLS_RUNS ?? 4);
  const dir = mkdtempSync(join(tmpdir(), 'colo-bench-'));
  try {
    const rtt = await syncPointRtt(count);
    console.log(
      `sync-point round trip, empty state, ${count} checkpoints: p50 ${rtt.p50.toFixed(1)} µs, p99 ${rtt.p99.toFixed(1)} µs`,
    );
    const files = tlsFiles(dir);
    const plain: Record<string, number> = {};
    const tls: Record<string, number | null> = {};
    for (const size of sizes) {
      plain[label(size)] = await transfer(null, size, runs);
      console.log(`transfer ${label(size)} plaintext: ${(plain[label(size)] / 1e9).toFixed(2)} GB/s`);
      tls[label(size)] = files ? await transfer(files, size, tlsRuns) : null;
      console.log(
        `transfer ${label(size)} TLS: ${tls[label(size)] === null ? 'skipped (no openssl)' : `${((tls[label(size)] as number) / 1e9).toFixed(2)} GB/s`}`,
      );
    }
    const headline = label(sizes[sizes.length - 1]);
    console.log(
      JSON.stringify({
        bench: 'checkpoint',
        checkpoints: count,
        syncpoint_rtt_p50_us: Math.round(rtt.p50 * 10) / 10,
        syncpoint_rtt_p99_us: Math.round(rtt.p99 * 10) / 10,
        transfer_size: headline,
        transfer_bytes_per_s_plain: Math.round(plain[headline]),
        transfer_bytes_per_s_tls: tls[headline] === null ? null : Math.round(tls[headline] as number),
        transfer_plain: Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, Math.round(v)])),
        transfer_tls: Object.fromEntries(Object.entries(tls).map(([k, v]) => [k, v === null ? null : Math.round(v)])),
        node: process.version,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const agentFlag = process.argv.indexOf('--agent');
if (agentFlag >= 0) await agentMain(process.argv[agentFlag + 1], process.argv[agentFlag + 2] || undefined);
else await main();
