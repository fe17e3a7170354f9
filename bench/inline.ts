/**
 * Inline proxy benchmark: `npm run bench:inline` (root, libpcap).
 *
 * One network namespace holds three veth pairs: the proxy's ends (xcli, xpri, xsec) and the load
 * generator's (ccli, cpri, csec). The proxy (InlineProxy, compare-only: no checkpoint engine, so it is
 * protected from the start and compares everything) runs in one child process on live libpcap ports; the
 * generator runs in another. The generator plays both VMs: it injects the same UDP frame on cpri and csec
 * (a match), and counts what the proxy releases on ccli.
 *   1. Throughput: offered rates rise step by step; fps_no_loss is the highest rate (compared pairs per
 *      second released to the client) at which every pair arrived. frames_in_per_s counts both copies.
 *   2. Latency on a match at a light load: from the moment both copies were injected until the released
 *      frame was captured on ccli (the generator's own libpcap send and receive are included: an upper bound
 *      on what the proxy adds). p50/p99 in µs.
 * Knobs: BENCH_RATES (pairs/s, default "20000,50000,100000,150000,200000,300000,400000"), BENCH_STEP_MS
 * (default 1000), BENCH_LATENCY_FRAMES (default 3000, at 1000 pairs/s). The last line printed is one JSON object.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { buildUdp } from '../compare/wire/build.js';
import { InlineProxy } from '../proxy/inline.js';
import type { FrameSink } from '../proxy/ports/framed.js';
import { LivePort, liveCaptureAvailable } from '../proxy/ports/live.js';

const script = new URL(import.meta.url).pathname;
const role = process.argv[2] ?? 'main';
const PAIRS = { proxy: ['xcli', 'xpri', 'xsec'], generator: ['ccli', 'cpri', 'csec'] } as const;
const CLIENT_MAC = '02:b0:00:00:00:01';
const VM_MAC = '02:b0:00:00:00:02';
const FLOWS = 16;
const PAYLOAD = 64;

const print = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

/** The proxy under test, inside the namespace. Prints {"ready":true}; on SIGTERM prints its counters. */
async function runProxy(): Promise<void> {
  // One libpcap callback delivers a whole batch from one interface before the other's: per-connection
  // queues must hold a batch, or the bench measures overflow checkpoints instead of matches.
  const proxy = new InlineProxy(null, {
    checkpointTimerMs: 0,
    maxHeldFrames: 1 << 20,
    compare: { maxQueueSize: 65536 },
  });
  const [client, primary, secondary] = PAIRS.proxy.map(
    (iface, i) =>
      new LivePort({ name: ['client', 'primary', 'secondary'][i], iface, sink: sinkOf(proxy, i), bufferFrames: 8192 }),
  );
  proxy.attach({ client, primary, secondary });
  proxy.start();
  print({ ready: true, mode: proxy.mode });
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await proxy.stop();
  print({
    status: proxy.status(),
    ports: { client: client.counters, primary: primary.counters, secondary: secondary.counters },
  });
  for (const port of [client, primary, secondary]) port.close();
}

function sinkOf(proxy: InlineProxy, i: number): FrameSink {
  return [proxy.sinks.client, proxy.sinks.primary, proxy.sinks.secondary][i];
}

/** Counts released frames on ccli and when each arrived; the index is the payload's first 4 bytes. */
class ClientSink implements FrameSink {
  received = 0;
  rejected = 0;
  arrived = new Float64Array(0);
  /** Each step numbers its frames from a new base, so a late frame of an earlier step is not counted. */
  base = 0;
  late = 0;

  reset(base: number, frames: number): void {
    this.received = 0;
    this.base = base;
    this.arrived = new Float64Array(frames);
  }

  onFrame(frame: Buffer): void {
    const index = frame.readUInt32BE(frame.length - PAYLOAD) - this.base;
    if (index < 0 || index >= this.arrived.length) this.late++;
    else if (this.arrived[index] === 0) {
      this.arrived[index] = performance.now();
      this.received++;
    }
  }

  onReject(): void {
    this.rejected++;
  }
}

const ignore: FrameSink = { onFrame: () => undefined, onReject: () => undefined };

function frameFor(index: number): Buffer {
  const payload = Buffer.alloc(PAYLOAD, 0x5a);
  payload.writeUInt32BE(index, 0);
  return buildUdp({
    srcMac: VM_MAC,
    dstMac: CLIENT_MAC,
    src: '10.99.0.2',
    dst: '10.99.0.1',
    srcPort: 5000,
    dstPort: 6000 + (index % FLOWS),
    payload,
  });
}

interface Step {
  offered: number;
  sent: number;
  received: number;
  achieved: number;
  latenciesUs: number[];
}

async function runGenerator(): Promise<void> {
  const sink = new ClientSink();
  const client = new LivePort({ name: 'client', iface: PAIRS.generator[0], sink, bufferFrames: 8192 });
  const primary = new LivePort({ name: 'primary', iface: PAIRS.generator[1], sink: ignore });
  const secondary = new LivePort({ name: 'secondary', iface: PAIRS.generator[2], sink: ignore });
  const stepMs = Number(process.env.BENCH_STEP_MS ?? 1000);
  const rates = (process.env.BENCH_RATES ?? '20000,50000,100000,150000,200000,300000,400000').split(',').map(Number);

  let base = 0;
  const step = async (rate: number, total: number): Promise<Step> => {
    base += 1 << 24;
    sink.reset(base, total);
    const frames = Array.from({ length: total }, (_, i) => frameFor(base + i));
    const sentAt = new Float64Array(total);
    const started = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.ceil(((performance.now() - started) / 1000) * rate));
      for (let n = 0; sent < due && n < 512; n++, sent++) {
        const frame = frames[sent];
        primary.send(frame);
        secondary.send(frame);
        sentAt[sent] = performance.now();
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const sendMs = performance.now() - started;
    // Drain: stop when everything arrived or nothing more came for a second.
    let last = -1;
    let quietSince = performance.now();
    while (sink.received < total && performance.now() - quietSince < 1000) {
      if (sink.received !== last) {
        last = sink.received;
        quietSince = performance.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const latenciesUs: number[] = [];
    for (let i = 0; i < total; i++) if (sink.arrived[i] > 0) latenciesUs.push((sink.arrived[i] - sentAt[i]) * 1000);
    return { offered: rate, sent: total, received: sink.received, achieved: total / (sendMs / 1000), latenciesUs };
  };

  await step(1000, 500); // warm-up: JIT, conntrack entries, ARP-free static path
  const throughput: Omit<Step, 'latenciesUs'>[] = [];
  let best = 0;
  for (const rate of rates) {
    const result = await step(rate, Math.round((rate * stepMs) / 1000));
    const { latenciesUs: _unused, ...row } = result;
    throughput.push(row);
    const lossless = result.received === result.sent;
    if (lossless) best = Math.max(best, Math.min(result.achieved, rate));
    print({
      step: rate,
      sent: result.sent,
      received: result.received,
      achieved: Math.round(result.achieved),
      late: sink.late,
    });
    if (!lossless) break;
  }
  const latencyFrames = Number(process.env.BENCH_LATENCY_FRAMES ?? 3000);
  // Light load (1000 pairs/s): the latency of a match, not of a queue.
  const light = await step(1000, latencyFrames);
  const sorted = Float64Array.from(light.latenciesUs).sort();
  const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  print({
    result: {
      fpsNoLoss: Math.round(best),
      throughput,
      latency: {
        frames: light.sent,
        received: light.received,
        p50: pct(50),
        p99: pct(99),
        max: sorted[sorted.length - 1],
      },
    },
  });
  for (const port of [client, primary, secondary]) port.close();
}

interface GeneratorResult {
  fpsNoLoss: number;
  throughput: object[];
  latency: { p50: number; p99: number; max: number; frames: number; received: number };
}

function sh(...args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: 'ignore' });
}

function lines(child: ChildProcess): AsyncIterable<string> {
  return createInterface({ input: child.stdout! });
}

async function runMain(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:inline needs root (network namespaces)');
  if (!liveCaptureAvailable())
    throw new Error('bench:inline needs the cap package built against libpcap (apt-get install libpcap-dev && npm ci)');
  const ns = `colobench${process.pid % 100000}`;
  const children: ChildProcess[] = [];
  sh('ip', 'netns', 'add', ns);
  try {
    const inNs = (...args: string[]): void => sh('ip', 'netns', 'exec', ns, ...args);
    inNs('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
    inNs('sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
    for (let i = 0; i < 3; i++) {
      const [a, b] = [PAIRS.proxy[i], PAIRS.generator[i]];
      inNs('ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      for (const end of [a, b]) {
        inNs('ethtool', '-K', end, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
        inNs('ip', 'link', 'set', end, 'up');
      }
    }
    const spawnRole = (name: string): ChildProcess => {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', script, name], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, COLO_LOG_LEVEL: 'warn' },
      });
      children.push(child);
      return child;
    };
    const proxy = spawnRole('proxy');
    const proxyLines = lines(proxy)[Symbol.asyncIterator]();
    const ready = await proxyLines.next();
    if (ready.done || !String(ready.value).includes('"ready"')) throw new Error('the proxy did not start');
    const generator = spawnRole('generator');
    let result: GeneratorResult | null = null as GeneratorResult | null;
    for await (const line of lines(generator)) {
      const parsed = JSON.parse(line) as { step?: number; result?: GeneratorResult };
      if (parsed.result) result = parsed.result;
      else console.log(`offered ${parsed.step} pairs/s: ${line}`);
    }
    proxy.kill('SIGTERM');
    const status = await proxyLines.next();
    if (!result) throw new Error('the generator gave no result');
    console.log(`proxy counters: ${status.done ? '(none)' : status.value}`);
    console.log(
      `fps_no_loss ${result.fpsNoLoss} compared pairs/s (${2 * result.fpsNoLoss} frames in/s); ` +
        `match latency p50 ${result.latency.p50.toFixed(1)} µs, p99 ${result.latency.p99.toFixed(1)} µs`,
    );
    console.log(
      JSON.stringify({
        bench: 'inline',
        fps_no_loss: result.fpsNoLoss,
        frames_in_per_s_no_loss: 2 * result.fpsNoLoss,
        match_latency_p50_us: Math.round(result.latency.p50 * 10) / 10,
        match_latency_p99_us: Math.round(result.latency.p99 * 10) / 10,
        match_latency_max_us: Math.round(result.latency.max * 10) / 10,
        latency_frames: result.latency.frames,
        latency_received: result.latency.received,
        steps: result.throughput,
      }),
    );
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    sh('ip', 'netns', 'del', ns);
  }
}

// Last: the classes and constants above must be initialised before a role runs.
if (role === 'proxy') await runProxy();
else if (role === 'generator') await runGenerator();
else await runMain();
