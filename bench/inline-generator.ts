/**
 * The load generator of `npm run bench:inline` (its `generator` role, inside the namespace): it plays the
 * client, and the VMs for the compare path, times itself first, then runs the latency and throughput steps
 * of both paths and prints the results as one JSON line. bench/inline.ts's header describes what it measures.
 */
import { buildUdp } from '../test/support/wire-build.js';
import type { FramePort, FrameSink } from '../proxy/port.js';
import { RingPort } from '../proxy/ports/ring.js';
import { ringClockUs } from '../proxy/ports/packet-ring.js';
import { busyPercent, cpuTicks } from './inline-host.js';
import {
  BACKEND,
  KERNEL_ECHO,
  PACING,
  PAIRS,
  SELF_PAIR,
  STEP_MS,
  openPort,
  print,
  type BenchPort,
} from './inline-ports.js';
import { percentileOfSorted } from './percentile.js';

const CLIENT_MAC = '02:b0:00:00:00:01';
const VM_MAC = '02:b0:00:00:00:02';
const FLOWS = 16;
/** Frames per second (for one second) that warm the proxy up before the latency step. */
const WARM_UP_RATE = 20_000;
const PAYLOAD = 64;

/**
 * The latency clock, in milliseconds. ring: CLOCK_REALTIME, the clock of the kernel's receive time of each
 * frame (RingPort.frameTimeUs), so an arrival is when the proxy's frame entered the client veth, not when
 * the generator woke up to see it. pcap: performance.now() when the callback runs (an upper bound).
 */
const clockMs = (): number => (BACKEND === 'ring' ? ringClockUs() / 1000 : performance.now());

/** Counts released frames on ccli and when each arrived; the index is the payload's first 4 bytes. */
class ClientSink implements FrameSink {
  /** The port it listens on: the source of kernel receive times (ring backend). */
  port: BenchPort | null = null;
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
      this.arrived[index] = this.port instanceof RingPort ? this.port.frameTimeUs / 1000 : performance.now();
      this.received++;
    }
  }

  onReject(): void {
    this.rejected++;
  }
}

export type Path = 'compare' | 'roundtrip';

/** compare: a VM's output toward the client; roundtrip: a client request, which the echoing VMs send back. */
function frameFor(index: number, path: Path): Buffer {
  const payload = Buffer.alloc(PAYLOAD, 0x5a);
  payload.writeUInt32BE(index, 0);
  const vmToClient = path === 'compare';
  return buildUdp({
    srcMac: vmToClient ? VM_MAC : CLIENT_MAC,
    dstMac: vmToClient ? CLIENT_MAC : VM_MAC,
    src: vmToClient ? '10.99.0.2' : '10.99.0.1',
    dst: vmToClient ? '10.99.0.1' : '10.99.0.2',
    srcPort: 5000,
    dstPort: 6000 + (index % FLOWS),
    payload,
  });
}

/** A VM that answers every frame with the same bytes (both VMs alike: a match). */
class EchoSink implements FrameSink {
  port: FramePort | null = null;
  active = false;

  onFrame(frame: Buffer): void {
    if (this.active) this.port?.send(frame);
  }

  onReject(): void {}
}

interface Step {
  offered: number;
  sent: number;
  received: number;
  achieved: number;
  /** Each CPU's busy share while the step was sending: the whole machine, proxy, generator and kernel alike. */
  cpuBusyPct: number[];
  latenciesUs: number[];
}

const sendQueued = (port: BenchPort, frame: Buffer): void => void port.send(frame);
const sendImmediate = (port: BenchPort, frame: Buffer): void =>
  void (port instanceof RingPort ? port.sendNow(frame) : port.send(frame));

/** Counts frames captured on the generator's own pair. */
class CountSink implements FrameSink {
  received = 0;
  onFrame(): void {
    this.received++;
  }
  onReject(): void {}
}

/**
 * The generator alone: injects `total` frames on one end of its own veth pair, 512 per event-loop turn (the
 * same batching as the measured steps), and captures them on the other end. Its rate bounds what the bench
 * can show.
 */
export interface SelfRate {
  injectedPerSec: number;
  capturedPerSec: number;
  lost: number;
}

async function timeGenerator(total: number): Promise<SelfRate> {
  const counter = new CountSink();
  const from = openPort('self', SELF_PAIR[0], { onFrame() {}, onReject() {} });
  const to = openPort('peer', SELF_PAIR[1], counter);
  const frames = Array.from({ length: 4096 }, (_, i) => frameFor(i, 'compare'));
  const started = performance.now();
  for (let sent = 0; sent < total;) {
    for (let n = 0; n < 512 && sent < total; n++, sent++) from.send(frames[sent & 4095]);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const injectedMs = performance.now() - started;
  let last = -1;
  while (counter.received < total && counter.received !== last) {
    last = counter.received;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const capturedMs = performance.now() - started;
  from.close();
  to.close();
  return {
    injectedPerSec: Math.round(total / (injectedMs / 1000)),
    capturedPerSec: Math.round(counter.received / (capturedMs / 1000)),
    lost: total - counter.received,
  };
}

export async function runGenerator(): Promise<void> {
  const self = await timeGenerator(Number(process.env.BENCH_SELF_FRAMES ?? 500_000));
  print({ generator: self });
  const sink = new ClientSink();
  const client = openPort('client', PAIRS.generator[0], sink, true);
  sink.port = client;
  const echoes = [new EchoSink(), new EchoSink()];
  const primary = openPort('primary', PAIRS.generator[1], echoes[0]);
  const secondary = openPort('secondary', PAIRS.generator[2], echoes[1]);
  echoes[0].port = primary;
  echoes[1].port = secondary;
  const rates = (
    process.env.BENCH_RATES ?? '5000,10000,20000,50000,100000,150000,200000,250000,300000,350000,400000,500000'
  )
    .split(',')
    .map(Number);

  let base = 0;
  /**
   * light: the latency steps. Each frame goes out at once (the ring port's sendNow: one syscall, as cap's
   * send is), so the compare path's timestamp, taken after both copies, is after the kernel has them, the
   * same definition for both backends; and the generator sleeps between frames instead of spinning, so it
   * does not take a core from the proxy.
   */
  const step = async (path: Path, rate: number, total: number, light = false): Promise<Step> => {
    const send = light ? sendImmediate : sendQueued;
    base += 1 << 24;
    sink.reset(base, total);
    for (const echo of echoes) echo.active = path === 'roundtrip' && !KERNEL_ECHO;
    const frames = Array.from({ length: total }, (_, i) => frameFor(base + i, path));
    const sentAt = new Float64Array(total);
    const ticksBefore = cpuTicks();
    const started = performance.now();
    let sent = 0;
    const dueNow = (): number => Math.min(total, Math.ceil(((performance.now() - started) / 1000) * rate));
    while (sent < total) {
      const due = dueNow();
      for (let n = 0; sent < due && n < 512; n++, sent++) {
        const frame = frames[sent];
        // The time right after the send returns: the frame is in the kernel (with sendNow, through the
        // veth and into the proxy's ring), so the generator's own work before the send is not counted.
        if (path === 'roundtrip') {
          send(client, frame);
          sentAt[sent] = clockMs();
        } else {
          send(primary, frame);
          send(secondary, frame);
          sentAt[sent] = clockMs();
        }
      }
      // The generator polls (one vCPU always busy) unless BENCH_PACING=sleep: then, ahead of its schedule, it
      // sleeps about a millisecond and sends a batch of rate/1000, so cpuBusyPct shows what the proxy and the
      // kernel use. Sleeping cost the proxy throughput: each release then wakes a halted vCPU (docs/inline.md).
      const behind = sent < dueNow();
      const spin = !light && (behind || PACING === 'spin');
      await new Promise((resolve) => (spin ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
    const sendMs = performance.now() - started;
    const cpuBusyPct = busyPercent(ticksBefore, cpuTicks());
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
    const achieved = total / (sendMs / 1000);
    return { offered: rate, sent: total, received: sink.received, achieved, cpuBusyPct, latenciesUs };
  };

  const measure = async (path: Path): Promise<GeneratorResult> => {
    // Warm-up, unrecorded: V8 optimises a function after enough calls, not after enough time, so at 1000/s the
    // proxy's hot path would still be compiling (on worker threads that preempt its main thread) during the
    // latency step. A second at WARM_UP_RATE, well below any lossy rate, does it; the step drains before returning.
    await step(path, WARM_UP_RATE, WARM_UP_RATE);
    // Light load (1000/s), before any step can leave a backlog: the latency of a match, not of a queue.
    const light = await step(path, 1000, latencyFrames, true);
    const sorted = Float64Array.from(light.latenciesUs).sort();
    const latency = {
      frames: light.sent,
      received: light.received,
      p50: percentileOfSorted(sorted, 0.5),
      p99: percentileOfSorted(sorted, 0.99),
      max: sorted[sorted.length - 1],
    };
    const throughput: Omit<Step, 'latenciesUs'>[] = [];
    let best = 0;
    for (const rate of rates) {
      // Announced, so that the bench can record the proxy's CPU during one step (BENCH_PERF_STEP).
      print({ path, starting: rate });
      const result = await step(path, rate, Math.round((rate * STEP_MS) / 1000));
      const { latenciesUs: _unused, ...row } = result;
      throughput.push(row);
      const lossless = result.received === result.sent;
      if (lossless) best = Math.max(best, Math.min(result.achieved, rate));
      const { sent, received, cpuBusyPct } = result;
      print({ path, step: rate, sent, received, achieved: Math.round(result.achieved), cpuBusyPct });
      if (!lossless) break;
    }
    return { fpsNoLoss: Math.round(best), throughput, latency };
  };
  const latencyFrames = Number(process.env.BENCH_LATENCY_FRAMES ?? 3000);
  const compare = await measure('compare');
  // The kernel echoes from here on; open ports would still copy every echoed frame into their rings.
  if (KERNEL_ECHO) for (const port of [primary, secondary]) port.close();
  const roundtrip = await measure('roundtrip');
  print({ result: { compare, roundtrip } });
  client.close();
  if (!KERNEL_ECHO) for (const port of [primary, secondary]) port.close();
}

export interface GeneratorResult {
  fpsNoLoss: number;
  throughput: object[];
  latency: { p50: number; p99: number; max: number; frames: number; received: number };
}
