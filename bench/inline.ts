/**
 * Inline proxy benchmark: `npm run bench:inline` (root; the packet-ring addon, or libpcap with BENCH_BACKEND=pcap).
 *
 * One network namespace holds three veth pairs: the proxy's ends (xcli, xpri, xsec) and the load
 * generator's (ccli, cpri, csec). The proxy (InlineProxy, compare-only: no checkpoint engine, so it is
 * protected from the start and compares everything) runs in one child process on live ports; the generator,
 * in another, plays the client and both VMs. Both use the same capture backend: BENCH_BACKEND=ring (default:
 * the AF_PACKET ring port, batched receive and send) or pcap (cap/libpcap, one callback and one send per
 * frame). Before measuring, the generator times itself on a fourth veth pair of its own (inject on one end,
 * capture on the other) and prints that rate, so it can be seen not to be the bottleneck.
 * Two paths, each measured the same way:
 *   roundtrip: the generator sends a UDP request on ccli; the proxy mirrors it to both VMs; each VM sends the
 *     same frame back; the proxy compares the two and releases one to ccli. The VMs are the kernel (default,
 *     BENCH_ECHO=kernel): a tc rule on cpri and csec sends every frame that arrives straight back, so the
 *     generator does one send and one receive per request instead of three of each, and is not the limit
 *     (its own rate, below, bounds a three-and-three generator to a third of it). The echo's kernel work
 *     runs inside the proxy's own send calls, on its CPU: this can only understate the proxy.
 *     BENCH_ECHO=generator: the generator answers on cpri/csec itself.
 *     fps_no_loss is this path: client frames per second mirrored and compared with none lost.
 *   compare: the generator injects the same UDP frame on cpri and csec; the proxy releases one to ccli.
 * Throughput: offered rates rise step by step; the figure is the highest achieved rate at which every frame
 * arrived. Latency at a light load (1000/s), after one unrecorded second at 20000/s that gets the proxy's
 * hot path through V8's tier-up: from the moment the send call returned (after both copies,
 * for compare) until the released frame reached ccli. ring: both ends on CLOCK_REALTIME, the arrival being
 * the kernel's receive time of the frame (taken as the proxy's send delivers it into the veth), so the
 * generator's wake-up is not counted; pcap: the arrival is when the generator's callback runs (upper bound).
 * Each capture gets a ring deep enough that a starved process loses nothing to it for a few hundred
 * milliseconds: pcap 8192 frames (512 MiB: cap's slots are 64 KiB; about 3 GiB in all), ring 32768 frames
 * (64 MiB: 2 KiB slots; BENCH_RX_FRAMES).
 * Knobs (environment; every figure printed names them, with the load average):
 *   BENCH_BACKEND        ring (default) or pcap.
 *   BENCH_QDISC_BYPASS   1: ring ports skip the qdisc (PACKET_QDISC_BYPASS). Default 0.
 *   BENCH_RX_FRAMES      receive ring per port, in frames. Default 32768 (ring), 8192 (pcap).
 *   BENCH_ECHO           kernel (default) or generator: who plays the VMs on the round trip (above).
 *   BENCH_PIN            "P,G": pin the proxy to CPU P and the generator to CPU G (taskset). Default "off":
 *                        on this 2-vCPU VM pinning gave the same throughput and a match p99 of ~2 ms against
 *                        ~0.3 ms unpinned (every wake-up crossed to the other, often halted, vCPU).
 *   BENCH_PROXY_RT       N: run the proxy at SCHED_FIFO priority N (chrt -f). Default 0 (off).
 *   BENCH_BACKLOG        N: set net.core.netdev_max_backlog (global) for the run; the old value is put
 *                        back at exit, on failure and on SIGINT/SIGTERM too. Default: unchanged.
 *   BENCH_SEMI_SPACE_MB  N: the proxy's V8 young generation (--max-semi-space-size). Default: Node's.
 *   BENCH_PROXY_PROFILE  DIR: write a CPU profile of the proxy there (node --cpu-prof).
 *   BENCH_PERF_STEP      RATE: record the proxy with `perf record -g` (linux-perf) during the round-trip step
 *                        offered at RATE, to bench/out/inline-perf.data, and print where its CPU went
 *                        (bench/inline-perf.ts; `proxy_perf_split` in the JSON).
 *   BENCH_PACING         spin (default): between batches the generator polls, keeping one vCPU busy; sleep: it
 *                        sleeps when ahead of its schedule (about 1 ms, then a batch of rate/1000 frames). Each
 *                        step prints cpuBusyPct, every CPU's busy share while it sent, which is the proxy's and
 *                        the kernel's load only when the generator sleeps.
 *   BENCH_SELF_FRAMES    the generator's own timing, frames. Default 500000.
 *   BENCH_RATES          offered rates per second. Default "5000,10000,20000,50000,...,350000,400000,500000".
 *   BENCH_STEP_MS        one throughput step. Default 5000: long enough that the receive rings cannot hide
 *                        a shortfall (a 32768-frame ring holds about 0.1 s at 300 k/s).
 *   BENCH_LATENCY_FRAMES frames in the latency step (1000/s). Default 3000.
 * The last line printed is one JSON object; `softnet_dropped` is the kernel's backlog drops
 * (/proc/net/softnet_stat, all CPUs) during the run: frames lost before any packet socket saw them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { InlineProxy } from '../proxy/inline.js';
import type { FrameSink } from '../proxy/port.js';
import { liveCaptureAvailable } from '../proxy/ports/live.js';
import { ringCaptureAvailable } from '../proxy/ports/packet-ring.js';
import { runGenerator, type GeneratorResult, type Path, type SelfRate } from './inline-generator.js';
import { commandFor, echoInKernel, launchFromEnv, setBacklog, softnetDropped } from './inline-host.js';
import { checkPerf, recordPerf, splitPerf, type PerfRecording, type PerfSplit } from './inline-perf.js';
import {
  BACKEND,
  KERNEL_ECHO,
  PACING,
  PAIRS,
  QDISC_BYPASS,
  RX_FRAMES,
  SELF_PAIR,
  STEP_MS,
  openPort,
  print,
} from './inline-ports.js';

const script = new URL(import.meta.url).pathname;
const PERF_STEP = process.env.BENCH_PERF_STEP ? Number(process.env.BENCH_PERF_STEP) : null;
const PERF_FILE = new URL('./out/inline-perf.data', import.meta.url).pathname;
const role = process.argv[2] ?? 'main';

/** The proxy under test, inside the namespace. Prints {"ready":true}; on SIGTERM prints its counters. */
async function runProxy(): Promise<void> {
  // One libpcap callback delivers a whole batch from one interface before the other's: per-connection
  // queues must hold a batch, or the bench measures overflow checkpoints instead of matches.
  const proxy = new InlineProxy(null, {
    checkpointTimerMs: 0,
    maxHeldFrames: 1 << 20,
    compare: { maxQueueSize: 65536 },
  });
  const [client, primary, secondary] = PAIRS.proxy.map((iface, i) =>
    openPort(['client', 'primary', 'secondary'][i], iface, sinkOf(proxy, i)),
  );
  proxy.attach({ client, primary, secondary });
  proxy.start();
  print({ ready: true, mode: proxy.mode, backend: BACKEND });
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await proxy.stop();
  const usage = process.resourceUsage();
  print({
    // CPU time is the per-frame cost that scheduling noise from other processes does not inflate much;
    // involuntary context switches count the times the proxy was preempted.
    cpu: {
      userUs: usage.userCPUTime,
      systemUs: usage.systemCPUTime,
      involuntarySwitches: usage.involuntaryContextSwitches,
    },
    status: proxy.status(),
    ports: { client: client.counters, primary: primary.counters, secondary: secondary.counters },
  });
  for (const port of [client, primary, secondary]) port.close();
}

function sinkOf(proxy: InlineProxy, i: number): FrameSink {
  return [proxy.sinks.client, proxy.sinks.primary, proxy.sinks.secondary][i];
}

interface ProxyReport {
  cpu: { userUs: number; systemUs: number; involuntarySwitches: number };
  ports: Record<string, { framesIn: number; framesOut: number }>;
}

function proxyCpuOf(line: string): { usPerFrame: number; involuntarySwitches: number } {
  const { cpu, ports } = JSON.parse(line) as ProxyReport;
  const frames = Object.values(ports).reduce((sum, port) => sum + port.framesIn + port.framesOut, 0);
  return {
    usPerFrame: Math.round(((cpu.userUs + cpu.systemUs) / Math.max(1, frames)) * 1000) / 1000,
    involuntarySwitches: cpu.involuntarySwitches,
  };
}

function sh(...args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: 'ignore' });
}

function lines(child: ChildProcess): AsyncIterable<string> {
  return createInterface({ input: child.stdout! });
}

async function runMain(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:inline needs root (network namespaces)');
  if (BACKEND === 'ring' && !ringCaptureAvailable())
    throw new Error(
      'bench:inline needs the packet-ring addon (apt-get install build-essential python3 && npm ci), ' +
        'or BENCH_BACKEND=pcap',
    );
  if (PERF_STEP !== null) {
    checkPerf();
    mkdirSync(dirname(PERF_FILE), { recursive: true });
  }
  if (BACKEND === 'pcap' && !liveCaptureAvailable())
    throw new Error('bench:inline needs the cap package built against libpcap (apt-get install libpcap-dev && npm ci)');
  const ns = `colobench${process.pid % 100000}`;
  const children: ChildProcess[] = [];
  const launch = launchFromEnv();
  const load = (): number[] => loadavg().map((value) => Math.round(value * 100) / 100);
  const loadBefore = load();
  let restoreBacklog = (): void => {};
  // A signal must not leave the global sysctl changed or the namespace behind.
  const onSignal = (signal: NodeJS.Signals): void => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    restoreBacklog();
    try {
      sh('ip', 'netns', 'del', ns);
    } catch {
      // not created yet
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  sh('ip', 'netns', 'add', ns);
  try {
    if (launch.backlog !== null) restoreBacklog = setBacklog(launch.backlog);
    const softnetBefore = softnetDropped();
    const inNs = (...args: string[]): void => sh('ip', 'netns', 'exec', ns, ...args);
    inNs('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
    inNs('sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
    for (let i = 0; i < 4; i++) {
      const [a, b] = i < 3 ? [PAIRS.proxy[i], PAIRS.generator[i]] : SELF_PAIR;
      inNs('ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      for (const end of [a, b]) {
        inNs('ethtool', '-K', end, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
        inNs('ip', 'link', 'set', end, 'up');
      }
    }
    if (KERNEL_ECHO) echoInKernel(inNs, [PAIRS.generator[1], PAIRS.generator[2]]);
    const spawnRole = (name: 'proxy' | 'generator'): ChildProcess => {
      const [command, ...args] = commandFor(ns, name, launch, script);
      const child = spawn(command, args, {
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
    type Results = { compare: GeneratorResult; roundtrip: GeneratorResult };
    let result = null as Results | null;
    let self = null as SelfRate | null;
    let recording: PerfRecording | null = null;
    let perfSplit: PerfSplit | null = null;
    for await (const line of lines(generator)) {
      const parsed = JSON.parse(line) as {
        step?: number;
        starting?: number;
        path?: Path;
        result?: Results;
        generator?: SelfRate;
      };
      if (parsed.starting !== undefined) {
        if (PERF_STEP !== null && parsed.path === 'roundtrip' && parsed.starting === PERF_STEP)
          recording = recordPerf(proxy.pid!, PERF_FILE);
        continue;
      }
      if (recording && parsed.path === 'roundtrip' && parsed.step === PERF_STEP) {
        await recording.stop();
        perfSplit = await splitPerf(recording.file);
        console.log(
          `proxy's CPU during the ${PERF_STEP}/s round-trip step (${recording.file}): ${JSON.stringify(perfSplit)}`,
        );
        recording = null;
      }
      if (parsed.result) result = parsed.result;
      else if (parsed.generator) {
        self = parsed.generator;
        console.log(
          `generator alone (${BACKEND}, its own veth pair): injects ${self.injectedPerSec} frames/s, captures ` +
            `${self.capturedPerSec}/s, lost ${self.lost}`,
        );
      } else console.log(`${parsed.path}: offered ${parsed.step}/s: ${line}`);
    }
    proxy.kill('SIGTERM');
    const status = await proxyLines.next();
    // Let it exit on its own (bounded): a CPU profile is written at exit, and SIGKILL would lose it.
    if (proxy.exitCode === null)
      await Promise.race([
        new Promise((resolve) => proxy.once('exit', resolve)),
        new Promise((resolve) => setTimeout(resolve, 5000).unref()),
      ]);
    await recording?.stop();
    if (!result) throw new Error('the generator gave no result');
    if (PERF_STEP !== null && perfSplit === null)
      console.log(
        `BENCH_PERF_STEP=${PERF_STEP}: no round-trip step offered that rate (not in BENCH_RATES, or an earlier step lost frames)`,
      );
    console.log(`proxy counters: ${status.done ? '(none)' : status.value}`);
    const proxyCpu = status.done ? null : proxyCpuOf(String(status.value));
    const { compare, roundtrip } = result;
    const us = (value: number): number => Math.round(value * 10) / 10;
    console.log(
      `mirrored+compared (client -> both VMs -> compare -> client): ${roundtrip.fpsNoLoss} requests/s without ` +
        `loss, round trip p50 ${us(roundtrip.latency.p50)} µs, p99 ${us(roundtrip.latency.p99)} µs`,
    );
    console.log(
      `compared (both VMs -> compare -> client): ${compare.fpsNoLoss} pairs/s without loss, ` +
        `match latency p50 ${us(compare.latency.p50)} µs, p99 ${us(compare.latency.p99)} µs`,
    );
    console.log(
      JSON.stringify({
        bench: 'inline',
        backend: BACKEND,
        generator_inject_fps: self?.injectedPerSec ?? null,
        generator_capture_fps: self?.capturedPerSec ?? null,
        // Client frames per second mirrored to both VMs, their answers compared and released: none lost.
        fps_no_loss: roundtrip.fpsNoLoss,
        roundtrip_latency_p50_us: us(roundtrip.latency.p50),
        roundtrip_latency_p99_us: us(roundtrip.latency.p99),
        // VM output pairs per second compared and released, none lost; latency from both copies to release.
        compare_fps_no_loss: compare.fpsNoLoss,
        match_latency_p50_us: us(compare.latency.p50),
        match_latency_p99_us: us(compare.latency.p99),
        match_latency_max_us: us(compare.latency.max),
        latency_frames: compare.latency.frames,
        softnet_dropped: softnetDropped() - softnetBefore,
        // The proxy's CPU (user + system, whole run) per frame it received or sent.
        proxy_cpu_us_per_frame: proxyCpu?.usPerFrame ?? null,
        proxy_involuntary_switches: proxyCpu?.involuntarySwitches ?? null,
        // BENCH_PERF_STEP: where the proxy's CPU went during that round-trip step (null: not asked, or not reached).
        proxy_perf_split: perfSplit,
        knobs: {
          echo: KERNEL_ECHO ? 'kernel' : 'generator',
          pacing: PACING,
          qdisc_bypass: QDISC_BYPASS,
          rx_frames: RX_FRAMES ?? null,
          step_ms: STEP_MS,
          ...launch,
        },
        load_before: loadBefore,
        load_after: load(),
        steps: { roundtrip: roundtrip.throughput, compare: compare.throughput },
      }),
    );
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    restoreBacklog();
    sh('ip', 'netns', 'del', ns);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// Last: the functions and constants above must be initialised before a role runs.
if (role === 'proxy') await runProxy();
else if (role === 'generator') await runGenerator();
else await runMain();
