/**
 * What the roles of `npm run bench:inline` share: the interface names, the capture backend with its knobs
 * (documented in bench/inline.ts's header), opening one port, and printing one JSON line.
 */
import type { FramePort, FrameSink } from '../proxy/port.js';
import { LivePort } from '../proxy/ports/live.js';
import { RingPort } from '../proxy/ports/ring.js';

export const PAIRS = { proxy: ['xcli', 'xpri', 'xsec'], generator: ['ccli', 'cpri', 'csec'] } as const;
/** The generator's own pair: it injects on one end and captures on the other to time itself. */
export const SELF_PAIR = ['gself', 'gpeer'] as const;
export const BACKEND = process.env.BENCH_BACKEND === 'pcap' ? 'pcap' : 'ring';

export const QDISC_BYPASS = process.env.BENCH_QDISC_BYPASS === '1';
export const KERNEL_ECHO = process.env.BENCH_ECHO !== 'generator';
export const PACING = process.env.BENCH_PACING === 'sleep' ? 'sleep' : 'spin';
/**
 * One throughput step. Five seconds: a 32768-frame receive ring holds about 0.1 s of frames at 300 k/s, so
 * in a one-second step it could hide a shortfall of up to a tenth of the rate; in five, a fiftieth.
 */
export const STEP_MS = Number(process.env.BENCH_STEP_MS ?? 5000);
export const RX_FRAMES = process.env.BENCH_RX_FRAMES ? Number(process.env.BENCH_RX_FRAMES) : undefined;

export type BenchPort = FramePort & { readonly counters: object };

export function openPort(name: string, iface: string, sink: FrameSink, timestamps = false): BenchPort {
  return BACKEND === 'ring'
    ? new RingPort({ name, iface, sink, bufferFrames: RX_FRAMES ?? 32768, qdiscBypass: QDISC_BYPASS, timestamps })
    : new LivePort({ name, iface, sink, bufferFrames: RX_FRAMES ?? 8192 });
}
export const print = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
