/**
 * The host side of `npm run bench:inline`: how its two children are launched (CPU pinning, real-time
 * priority, V8 flags) and the kernel settings and counters it sets and reads (netdev_max_backlog, softnet
 * drops, the kernel echo). The knobs are documented in bench/inline.ts's header.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** How each child is started: CPU pinning, real-time priority, V8 flags (the knobs in the header). */
export interface Launch {
  pin: { proxy: number; generator: number } | null;
  proxyRt: number;
  semiSpaceMb: number | null;
  backlog: number | null;
  proxyProfileDir: string | null;
}

export function launchFromEnv(): Launch {
  const pinText = process.env.BENCH_PIN ?? 'off';
  const [p, g] = pinText.split(',').map(Number);
  const pin = pinText === 'off' || !Number.isInteger(p) || !Number.isInteger(g) ? null : { proxy: p, generator: g };
  const number = (name: string): number | null => (process.env[name] ? Number(process.env[name]) : null);
  return {
    pin,
    proxyRt: number('BENCH_PROXY_RT') ?? 0,
    semiSpaceMb: number('BENCH_SEMI_SPACE_MB'),
    backlog: number('BENCH_BACKLOG'),
    proxyProfileDir: process.env.BENCH_PROXY_PROFILE ?? null,
  };
}

/** The command line of one child, inside the namespace: [taskset -c N] [chrt -f P] node [flags] script role. */
export function commandFor(ns: string, name: 'proxy' | 'generator', launch: Launch, script: string): string[] {
  const command = ['ip', 'netns', 'exec', ns];
  if (launch.pin) command.push('taskset', '-c', String(launch.pin[name]));
  if (name === 'proxy' && launch.proxyRt > 0) command.push('chrt', '-f', String(launch.proxyRt));
  command.push(process.execPath);
  if (name === 'proxy' && launch.semiSpaceMb) command.push(`--max-semi-space-size=${launch.semiSpaceMb}`);
  if (name === 'proxy' && launch.proxyProfileDir)
    command.push('--cpu-prof', `--cpu-prof-dir=${launch.proxyProfileDir}`);
  command.push('--import', 'tsx', script, name);
  return command;
}

/**
 * Makes each device send every frame that arrives on it straight back out, unchanged (tc clsact ingress, a
 * match-all u32 filter, mirred redirect): a VM that echoes, played by the kernel. `run` runs one command.
 */
export function echoInKernel(run: (...args: string[]) => void, devices: readonly string[]): void {
  const bounce = (device: string): string[] =>
    `ingress protocol all u32 match u32 0 0 action mirred egress redirect dev ${device}`.split(' ');
  for (const device of devices) {
    try {
      run('tc', 'qdisc', 'add', 'dev', device, 'clsact');
      run('tc', 'filter', 'add', 'dev', device, ...bounce(device));
    } catch (err) {
      throw new Error(
        `BENCH_ECHO=kernel needs tc (iproute2) and the kernel's clsact, u32 and mirred; ` +
          `BENCH_ECHO=generator does without (${(err as Error).message})`,
      );
    }
  }
}

const BACKLOG_SYSCTL = '/proc/sys/net/core/netdev_max_backlog';

/** Sets netdev_max_backlog; the returned function puts the old value back (idempotent). */
export function setBacklog(value: number): () => void {
  const old = readFileSync(BACKLOG_SYSCTL, 'utf8').trim();
  writeFileSync(BACKLOG_SYSCTL, String(value));
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    writeFileSync(BACKLOG_SYSCTL, old);
  };
}

/** Frames the kernel dropped from full per-CPU backlogs, all CPUs (second column of softnet_stat). */
export function softnetDropped(): number {
  return readFileSync('/proc/net/softnet_stat', 'utf8')
    .trim()
    .split('\n')
    .reduce((sum, line) => sum + parseInt(line.split(/\s+/)[1], 16), 0);
}

/** One CPU's busy and total time so far (/proc/stat, in clock ticks; busy is all but idle and iowait). */
export interface CpuTicks {
  busy: number;
  total: number;
}

/** Every CPU's ticks so far. */
export function cpuTicks(): CpuTicks[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((line) => /^cpu\d/.test(line))
    .map((line) => {
      const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
      const total = ticks.reduce((a, b) => a + b, 0);
      return { busy: total - ticks[3] - ticks[4], total };
    });
}

/** Each CPU's busy share between two cpuTicks() readings, in percent. */
export function busyPercent(before: CpuTicks[], after: CpuTicks[]): number[] {
  return after.map((a, i) => {
    const total = a.total - before[i].total;
    return total > 0 ? Math.round(((a.busy - before[i].busy) * 100) / total) : 0;
  });
}
