/**
 * Real-VM benchmark: `npm run bench:vm` (root; qemu-system-x86, cpio, the packet-ring addon).
 *
 * One stock QEMU guest (TCG, 128 MiB, busybox httpd) serves the same closed-loop HTTP load twice in one run:
 * 1. direct: the client's veth and the primary's tap on one Linux bridge, no colo-proxy;
 * 2. protected: colo-proxy run inline, the secondary's agent with the qemu driver, timer checkpoints every
 *    BENCH_TIMER_MS (2000) while the load runs.
 * Then it keeps the pair protected until BENCH_CHECKPOINTS (20) timer checkpoints have happened in all.
 * The pause of each checkpoint is timed by QEMU itself: a second QMP monitor on the primary records the STOP and
 * RESUME events (QEMU's wall-clock timestamps), so the pause is "primary stopped -> primary running again";
 * the state bytes of each are `query-migrate`'s ram.transferred, read after the RESUME.
 * Knobs: BENCH_MODE (precopy: QEMU to QEMU into a standby secondary, two taps; stream: through the
 * checkpoint channel, one tap), BENCH_SECONDS (10 per load phase), BENCH_CONCURRENCY (4), BENCH_MEM_MIB (128),
 * BENCH_TIMER_MS, BENCH_CHECKPOINTS. The last line printed is one JSON object.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureGuest } from '../test/support/guest-vm.js';
import { createVmTopology, VmLab } from '../test/support/vm-lab.js';
import { busyPercent, cpuTicks } from './inline-host.js';
import { percentileOfSorted } from './percentile.js';

const run = promisify(execFile);
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const mode = process.env.BENCH_MODE === 'stream' ? 'stream' : 'precopy';
const seconds = env('BENCH_SECONDS', 10);
const concurrency = env('BENCH_CONCURRENCY', 4);
const memMiB = env('BENCH_MEM_MIB', 128);
const timerMs = env('BENCH_TIMER_MS', 2000);
const wanted = env('BENCH_CHECKPOINTS', 20);

interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

const log = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

async function main(): Promise<void> {
  const image = await ensureGuest();
  const topo = await createVmTopology(120);
  const lab = new VmLab(topo, image, { precopy: mode === 'precopy', checkpointTimerMs: timerMs, memMiB });
  const ns = topo.proxy.name;
  const ip = (...args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', ns, 'ip', ...args]);
  let failed = false;
  try {
    await lab.bootPrimary();
    const loadJob = { kind: 'load', path: '/index.html', durationMs: seconds * 1000, concurrency };

    await ip('link', 'add', 'brdirect', 'type', 'bridge', 'forward_delay', '0');
    await ip('link', 'set', 'xcli', 'master', 'brdirect');
    await ip('link', 'set', topo.primaryTap, 'master', 'brdirect');
    await ip('link', 'set', 'brdirect', 'up');
    // Each vCPU's busy share during a load: under TCG a guest is CPU-bound, and protected runs two of them.
    let ticks = cpuTicks();
    const direct = await lab.clientResult<LoadResult>(lab.client(loadJob, 'direct'), (seconds + 60) * 1000);
    const directBusy = busyPercent(ticks, cpuTicks());
    log({ phase: 'direct', ...direct });
    await ip('link', 'del', 'brdirect');

    await lab.startAgent();
    await lab.startProxy();
    ticks = cpuTicks();
    const protectedLoad = await lab.clientResult<LoadResult>(lab.client(loadJob, 'protected'), (seconds + 60) * 1000);
    const protectedBusy = busyPercent(ticks, cpuTicks());
    log({ phase: 'protected', ...protectedLoad });

    const timerCheckpoints = (): number =>
      lab.proxyEvents('checkpoint').filter((e) => e.seeding !== true && e.reason === 'timer').length;
    await lab.proxy.waitFor(
      () => timerCheckpoints() >= wanted,
      (wanted * timerMs + 60_000) * 2,
      `${wanted} timer checkpoints`,
    );

    const pauses: number[] = [];
    const events = lab.primaryEvents;
    // The seeding checkpoint is the first STOP/RESUME pair; the timer's follow.
    for (let i = 0; i < events.length; i++) {
      if (events[i].name !== 'STOP') continue;
      const resume = events.slice(i + 1).find((e) => e.name === 'RESUME');
      if (resume) pauses.push(resume.time - events[i].time);
    }
    const timed = pauses.slice(1).sort((a, b) => a - b);
    const stateBytes = lab.migrationBytes.slice(1).sort((a, b) => a - b);
    const phases = lab.proxyEvents('checkpoint').filter((e) => e.seeding !== true && e.ok === true);
    const result = {
      bench: 'vm',
      mode,
      mem_mib: memMiB,
      checkpoint_timer_ms: timerMs,
      checkpoints: timed.length,
      checkpoint_pause_ms_p50: round(percentileOfSorted(timed, 0.5)),
      checkpoint_pause_ms_p99: round(percentileOfSorted(timed, 0.99)),
      checkpoint_pause_ms_max: round(timed[timed.length - 1]),
      checkpoint_total_ms_p50: round(
        percentileOfSorted(
          phases.map((e) => Number((e.durationsMs as Record<string, number>).total)).sort((a, b) => a - b),
          0.5,
        ),
      ),
      state_bytes_p50: percentileOfSorted(stateBytes, 0.5),
      direct_rps: round(direct.rps),
      protected_rps: round(protectedLoad.rps),
      protected_over_direct: round(protectedLoad.rps / direct.rps),
      direct_latency_ms: { p50: direct.p50Ms, p99: direct.p99Ms },
      protected_latency_ms: { p50: protectedLoad.p50Ms, p99: protectedLoad.p99Ms },
      errors: { direct: direct.errors, protected: protectedLoad.errors },
      cpu_busy_pct: { direct: directBusy.map(round), protected: protectedBusy.map(round) },
      divergences: lab.proxyEvents('divergence').length,
      concurrency,
      load_seconds: seconds,
    };
    log(result);
  } catch (err) {
    failed = true;
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n${lab.logs()}\n`);
    process.exitCode = 1;
  } finally {
    await lab.stop(failed);
    await topo.destroy();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

await main();
