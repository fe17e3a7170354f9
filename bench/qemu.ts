/**
 * QEMU's colo-compare vs `colo-proxy compare`, end to end over loopback sockets: the same pre-built framed
 * workload goes to both, one implementation at a time, and released frames are counted on outdev.
 *
 * - Throughput: released frames/s for matched TCP streams (1448-byte payloads, 1 and 64 connections) and
 *   64-byte UDP frames (64 flows). Timed from the first byte written to the last frame released. The
 *   generator writes pre-framed buffers in large batches; its own rate (the same writes into a discarding
 *   socket) is printed next to each figure, and so is this process's CPU share during each run (a generator
 *   far below 100% CPU was waiting on the compare process, not the other way round).
 * - Latency: one TCP pair in flight at a time (low rate), from writing the later frame of the pair to the
 *   arrival of its release; p50/p99 over the samples.
 *
 * Both run with compare_timeout 60000 (no timer checkpoint during a run) and max_queue_size 65536 (a queue
 * limit is a correctness feature, not under test here). A run whose DO_CHECKPOINT count is not 0 is
 * reported as invalid: something mismatched.
 *
 *   npm run bench:qemu                       (both; needs qemu-system-x86)
 *   COLO_BENCH_IMPLS=qemu npm run bench:qemu (one side only)
 *   COLO_BENCH_CPU_PROF=/tmp/prof npm run bench:qemu   (ours runs under node --cpu-prof)
 *   COLO_BENCH_ROUNDS=3, COLO_BENCH_SCALE=1 (frames per run x scale), COLO_BENCH_MAX_QUEUE=65536
 *
 * Output: progress lines on stderr; the last line on stdout is one JSON object.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { buildTcp, buildUdp } from '../compare/wire/build.js';
import { TcpFlag } from '../compare/wire/frame-info.js';
import { bounded, encodeFrame } from '../test/support/framed-client.js';
import { CompareSession, startCompare, type CompareSettings, type Implementation } from '../test/support/qemu.js';

const scale = Number(process.env.COLO_BENCH_SCALE ?? '1');
const impls = (process.env.COLO_BENCH_IMPLS ?? 'qemu,ours').split(',') as Implementation[];
const profileDir = process.env.COLO_BENCH_CPU_PROF;
const rounds = Number(process.env.COLO_BENCH_ROUNDS ?? '3');

interface Workload {
  name: 'tcp1448_1conn' | 'tcp1448_64conn' | 'udp64';
  frames: number;
  /** The framed byte streams for pri and sec, cut into write batches. */
  pri: Buffer[];
  sec: Buffer[];
}

/** Frame `frames` and cut the stream into ~256 KiB batches (fewer syscalls, fewer drain waits). */
function batches(frames: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  let size = 0;
  for (const f of frames) {
    const framed = encodeFrame(f);
    pending.push(framed);
    size += framed.length;
    if (size >= 256 * 1024) {
      out.push(Buffer.concat(pending));
      pending = [];
      size = 0;
    }
  }
  if (pending.length > 0) out.push(Buffer.concat(pending));
  return out;
}

function tcpWorkload(name: Workload['name'], connections: number, total: number): Workload {
  const payload = Buffer.alloc(1448);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 255;
  const frames: Buffer[] = [];
  const perConnection = Math.ceil(total / connections);
  for (let s = 0; s < perConnection; s++) {
    for (let c = 0; c < connections; c++) {
      frames.push(
        buildTcp({
          src: '10.0.0.1',
          dst: '10.0.0.2',
          srcPort: 80,
          dstPort: 20000 + c,
          seq: (1000 + s * 1448) >>> 0,
          ack: 7777,
          flags: TcpFlag.ACK | TcpFlag.PSH,
          payload,
        }),
      );
    }
  }
  // The secondary's copy is byte-identical: the rewriter has already mapped it into the primary's seq space.
  const stream = batches(frames);
  return { name, frames: frames.length, pri: stream, sec: stream };
}

/**
 * 64-byte frames on 64 flows; every datagram of a flow is identical, so QEMU's newest-first matching and
 * our FIFO matching both pair any primary with any secondary of its flow (no mismatch from reordering).
 */
function udpWorkload(total: number): Workload {
  const frames: Buffer[] = [];
  const perFlow = Array.from({ length: 64 }, (_, c) =>
    buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5000, dstPort: 30000 + c, payload: Buffer.alloc(22, c) }),
  );
  for (let i = 0; i < total; i++) frames.push(perFlow[i % 64]);
  const stream = batches(frames);
  return { name: 'udp64', frames: frames.length, pri: stream, sec: stream };
}

/** Write both streams batch by batch, alternating sides, waiting for drain when the kernel pushes back. */
async function generate(pri: Socket, sec: Socket, w: Workload): Promise<void> {
  const drained = (s: Socket): Promise<void> => new Promise((r) => s.once('drain', r));
  for (let i = 0; i < w.pri.length; i++) {
    pri.write(w.pri[i]);
    sec.write(w.sec[i]);
    if (pri.writableNeedDrain) await drained(pri);
    if (sec.writableNeedDrain) await drained(sec);
  }
}

/** Counts length-prefixed frames in a byte stream without copying them. */
class FrameCounter {
  count = 0;
  private skip = 0;
  private head = Buffer.alloc(4);
  private headHave = 0;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        if (this.skip === 0) this.count++;
        continue;
      }
      const n = Math.min(4 - this.headHave, chunk.length - at);
      chunk.copy(this.head, this.headHave, at, at + n);
      this.headHave += n;
      at += n;
      if (this.headHave === 4) {
        this.headHave = 0;
        this.skip = this.head.readUInt32BE(0);
        if (this.skip === 0) this.count++;
      }
    }
  }
}

/**
 * A sink in its own process, like the compare process it stands in for: reads two connections, discards,
 * and prints "done" once `expected` bytes have arrived.
 */
const sinkSource = `
const net = require('node:net');
const expected = Number(process.argv[1]);
let received = 0;
const server = net.createServer((s) => s.on('data', (c) => {
  received += c.length;
  if (received >= expected) process.stdout.write('done\\n');
}));
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

/** The generator alone: the same writes into a discarding process, timed to the last byte read. */
async function generatorRate(w: Workload): Promise<number> {
  const expected = 2 * w.pri.reduce((sum, b) => sum + b.length, 0);
  const sink = spawn(process.execPath, ['-e', sinkSource, String(expected)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    sink.stdout.setEncoding('utf8');
    let text = '';
    const lines = (want: (t: string) => boolean): Promise<void> =>
      bounded<void>('the sink', 60_000, (done) => {
        const check = (chunk: string): void => {
          text += chunk;
          if (want(text)) done();
        };
        sink.stdout.on('data', check);
        return () => sink.stdout.off('data', check);
      });
    await lines((t) => t.includes('\n'));
    const port = Number(text.split('\n')[0]);
    const open = (): Promise<Socket> =>
      new Promise((r) => {
        const s = connect({ host: '127.0.0.1', port }, () => r(s));
      });
    const [a, b] = await Promise.all([open(), open()]);
    const finished = lines((t) => t.includes('done'));
    const t0 = performance.now();
    await generate(a, b, w);
    await finished;
    const fps = w.frames / ((performance.now() - t0) / 1000);
    a.destroy();
    b.destroy();
    return fps;
  } finally {
    sink.kill();
  }
}

const settings: CompareSettings = {
  compareTimeoutMs: 60_000,
  maxQueueSize: Number(process.env.COLO_BENCH_MAX_QUEUE ?? '65536'),
};

function settingsFor(impl: Implementation): CompareSettings {
  if (impl !== 'ours' || !profileDir) return settings;
  return { ...settings, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] };
}

interface Run {
  fps: number;
  requests: number;
  /** This process's CPU time (generator + counting reader) over the run's wall time: far below 100 = idle. */
  generatorCpuPct: number;
}

async function throughput(impl: Implementation, w: Workload): Promise<Run> {
  const proc = await startCompare(impl, settingsFor(impl));
  const session = await CompareSession.open(proc, settings);
  try {
    const out = session.out.detach();
    const counter = new FrameCounter();
    let finish: () => void = () => {};
    const all = new Promise<void>((r) => (finish = r));
    out.on('data', (chunk: Buffer) => {
      counter.push(chunk);
      if (counter.count >= w.frames) finish();
    });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await generate(session.pri.socket, session.sec.socket, w);
    await bounded<void>(`${impl} ${w.name}: ${w.frames} releases (got ${counter.count})`, 120_000, (done) => {
      void all.then(done);
      return () => {};
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; released ${counter.count}`);
    });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const fps = w.frames / (wallMs / 1000);
    await session.notifyBarrier();
    const generatorCpuPct = Math.round((cpu.user + cpu.system) / 10 / wallMs);
    return { fps, requests: session.checkpointRequests(), generatorCpuPct };
  } finally {
    await session.close();
  }
}

/** One pair in flight: write P then S, time from S's write to P's release. */
async function latency(impl: Implementation, samples: number): Promise<{ p50: number; p99: number }> {
  const proc = await startCompare(impl, settingsFor(impl));
  const session = await CompareSession.open(proc, settings);
  try {
    const out = session.out.detach();
    const counter = new FrameCounter();
    let waiting: (() => void) | null = null;
    let target = 0;
    out.on('data', (chunk: Buffer) => {
      counter.push(chunk);
      if (waiting && counter.count >= target) waiting();
    });
    const payload = Buffer.alloc(64, 7);
    const micros: number[] = [];
    for (let i = 0; i < samples; i++) {
      const frame = encodeFrame(
        buildTcp({
          src: '10.0.0.1',
          dst: '10.0.0.2',
          srcPort: 80,
          dstPort: 40000,
          seq: 1000 + i * 64,
          ack: 7777,
          flags: TcpFlag.ACK | TcpFlag.PSH,
          payload,
        }),
      );
      target = i + 1;
      const released = new Promise<void>((r) => (waiting = r));
      session.pri.socket.write(frame);
      const t0 = performance.now();
      session.sec.socket.write(frame);
      await released;
      micros.push((performance.now() - t0) * 1000);
    }
    micros.sort((a, b) => a - b);
    const at = (q: number): number => Math.round(micros[Math.min(micros.length - 1, Math.floor(q * micros.length))]);
    return { p50: at(0.5), p99: at(0.99) };
  } finally {
    await session.close();
  }
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

const workloads = [
  tcpWorkload('tcp1448_1conn', 1, Math.round(40_000 * scale)),
  tcpWorkload('tcp1448_64conn', 64, Math.round(40_000 * scale)),
  udpWorkload(Math.round(200_000 * scale)),
];

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const result: Record<string, unknown> = {};
let invalid = false;
for (const w of workloads) {
  const generator: number[] = [];
  const runs = new Map<Implementation, number[]>(impls.map((impl) => [impl, []]));
  const generatorCpu: number[] = [];
  // Rounds alternate the implementations so a busy machine slows both alike; the median is reported.
  for (let round = 0; round < rounds; round++) {
    generator.push(await generatorRate(w));
    for (const impl of impls) {
      const { fps, requests, generatorCpuPct } = await throughput(impl, w);
      if (requests !== 0) invalid = true;
      runs.get(impl)!.push(fps);
      generatorCpu.push(generatorCpuPct);
      log(
        `${w.name} round ${round + 1} ${impl}: ${Math.round(fps)} frames/s ` +
          `(${w.frames} frames, ${requests} requests, generator CPU ${generatorCpuPct}%)`,
      );
    }
  }
  const figures: Record<string, number> = {};
  for (const impl of impls) figures[`${impl}_fps`] = Math.round(median(runs.get(impl)!));
  const ratio = figures.ours_fps && figures.qemu_fps ? +(figures.ours_fps / figures.qemu_fps).toFixed(2) : null;
  log(`${w.name} generator alone: ${Math.round(median(generator))} frames/s`);
  result[w.name] = {
    ...figures,
    ratio,
    generator_fps: Math.round(median(generator)),
    generator_cpu_pct_max: Math.max(...generatorCpu),
    frames: w.frames,
    rounds,
  };
}

const samples = Math.round(2_000 * scale);
const lat: Record<string, number> = {};
for (const impl of impls) {
  const { p50, p99 } = await latency(impl, samples);
  lat[`${impl}_p50`] = p50;
  lat[`${impl}_p99`] = p99;
  log(`latency ${impl}: p50 ${p50} us, p99 ${p99} us (${samples} pairs, one in flight)`);
}
result.latency_us = { ...lat, samples };
if (invalid) result.invalid = 'a run saw DO_CHECKPOINT: some frames did not match';
console.log(JSON.stringify(result));
