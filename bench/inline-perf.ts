/**
 * Where the proxy's CPU goes during one round-trip step of `npm run bench:inline` (BENCH_PERF_STEP): `perf
 * record -g` on the proxy process alone, then its samples counted by where they were taken (kernel or user
 * space) and by the kernel functions on their stacks. Kernel stacks are whole, so a kernel function's share
 * counts every sample taken inside it or below it; user-space stacks through V8's compiled code are not, so
 * user space is split by the library of the sample's own instruction only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { hasCommand } from '../test/support/prerequisites.js';

/** Kernel functions whose share is reported: the send call, the deliveries inside it, the packet-ring writes. */
const KERNEL_PARTS = {
  sendmmsg: '__sys_sendmmsg',
  deliveries: 'net_rx_action',
  ringWrites: 'tpacket_rcv',
  ringRoomCheck: '__packet_rcv_has_room',
  ipDrop: 'ip_rcv',
  epollWait: 'do_epoll_wait',
} as const;

type KernelPart = keyof typeof KERNEL_PARTS;

export interface PerfSplit {
  samples: number;
  /** Percent of the proxy's samples taken in the kernel. */
  kernelPct: number;
  /** Percent of the samples with each function on the kernel stack. */
  kernelParts: Record<KernelPart, number>;
  /** Percent of the samples taken in user space, by the library (or V8's compiled code, `jit`). */
  user: Record<string, number>;
}

export interface PerfRecording {
  file: string;
  stop(): Promise<void>;
}

/** Throws when perf is missing, naming the package. */
export function checkPerf(): void {
  const perf = hasCommand('perf', 'linux-perf');
  if (!perf.ok) throw new Error(`BENCH_PERF_STEP needs perf: ${perf.fix}`);
}

export function recordPerf(pid: number, file: string): PerfRecording {
  const child: ChildProcess = spawn('perf', ['record', '-q', '-g', '-p', String(pid), '-o', file], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    file,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    },
  };
}

function libraryOf(dso: string): string {
  if (dso.includes('kernel.kallsyms')) return 'kernel';
  if (dso.startsWith('/tmp/perf-') || dso.includes('[JIT]')) return 'jit';
  const name = dso.split('/').pop() ?? dso;
  return name.replace(/\.so[.\d]*$/, '');
}

/**
 * Counts `perf script -F pid,ip,sym,dso` output fed line by line: each sample is a header line, then its
 * stack, one tab-indented frame per line with the instruction the sample hit first, then a blank line.
 */
export class PerfSampleCounter {
  private samples = 0;
  private kernel = 0;
  private readonly parts = Object.fromEntries(Object.keys(KERNEL_PARTS).map((key) => [key, 0])) as Record<
    KernelPart,
    number
  >;
  private readonly user = new Map<string, number>();
  private frames: string[] = [];

  line(text: string): void {
    if (text.trim() === '') this.endSample();
    else if (text.startsWith('\t')) this.frames.push(text);
  }

  split(): PerfSplit {
    this.endSample();
    const pct = (n: number): number => Math.round((1000 * n) / Math.max(1, this.samples)) / 10;
    return {
      samples: this.samples,
      kernelPct: pct(this.kernel),
      kernelParts: Object.fromEntries(Object.entries(this.parts).map(([key, n]) => [key, pct(n)])) as Record<
        KernelPart,
        number
      >,
      user: Object.fromEntries([...this.user].sort((a, b) => b[1] - a[1]).map(([name, n]) => [name, pct(n)])),
    };
  }

  private endSample(): void {
    const frames = this.frames;
    if (frames.length === 0) return;
    this.frames = [];
    this.samples++;
    const leaf = libraryOf(frames[0].slice(frames[0].lastIndexOf(' (') + 2, -1));
    if (leaf === 'kernel') this.kernel++;
    else this.user.set(leaf, (this.user.get(leaf) ?? 0) + 1);
    for (const key of Object.keys(KERNEL_PARTS) as KernelPart[]) {
      const symbol = ` ${KERNEL_PARTS[key]} ([kernel.kallsyms])`;
      if (frames.some((frame) => frame.endsWith(symbol))) this.parts[key]++;
    }
  }
}

/** Throws with perf's own words when `perf script` fails, rather than report an empty split. */
export async function splitPerf(file: string): Promise<PerfSplit> {
  const script = spawn('perf', ['script', '-i', file, '-F', 'pid,ip,sym,dso'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  script.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => script.once('close', (code) => resolve(code)));
  const counter = new PerfSampleCounter();
  for await (const line of createInterface({ input: script.stdout })) counter.line(line);
  const code = await exited;
  if (code !== 0) throw new Error(`perf script -i ${file} exited with ${code}: ${stderr.trim().slice(-500)}`);
  return counter.split();
}
