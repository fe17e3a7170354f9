/**
 * QEMU's colo-compare vs `colo-proxy compare`, end to end over loopback TCP sockets: the same pre-built
 * framed workload goes to both, one implementation at a time, and released frames are counted on outdev.
 *
 * - Throughput: released frames/s for matched TCP streams (1448-byte payloads, 1 and 64 connections) and
 *   64-byte UDP frames (64 flows), from the generator's first write to the reader's last released frame.
 *   The generator and the reader are child processes of their own (bench/qemu-load.ts). The generator's own
 *   rate (the same writes into a discarding reader, no compare process) is printed next to each figure.
 *   Rounds alternate QEMU and ours (and which goes first), and the median of the rounds is reported.
 * - CPU per released frame of the compare process (all its threads, from /proc/PID/task/TID/schedstat),
 *   and the generator's and reader's CPU share, so a reader can tell who was busy.
 * - Latency: QEMU and ours run at once and take turns in blocks of 500 pairs, one pair in flight, paced
 *   ~1 ms apart (a low rate: each process goes idle between pairs). The load processes are stopped first.
 *   Timed on the wire (as root, with tcpdump; bench/qemu-wire.ts): from the kernel's time for
 *   the later frame of a pair (the secondary's) crossing lo to its time for the release crossing lo, whole.
 *   That is the latency the implementation adds, and nothing of the bench's: timed by the bench instead
 *   (from writing the secondary's frame to reading the release, printed alongside, and the fallback), the
 *   bench's own wake-up counts, and it differs between the two: QEMU writes the length and the frame
 *   separately, and the first segment wakes the bench before the release is whole. p50/p99 over the
 *   samples. Before them, 20000 unrecorded warm-up pairs go through unpaced: V8 optimises a function after
 *   enough calls, not after enough time, so at 1 pair/ms our hot path would still be compiling (on worker
 *   threads that preempt the main thread) for the first ten-odd seconds, and that start-up tail is not the
 *   steady state of a proxy that runs for days.
 *
 * Both run with compare_timeout 60000 (no timer checkpoint during a run) and max_queue_size 65536 (a queue
 * limit is a correctness feature, not under test here). A run whose DO_CHECKPOINT count is not 0 is
 * reported as invalid: something mismatched.
 *
 *   npm run bench:qemu                       (both; needs qemu-system-x86)
 *   COLO_BENCH_IMPLS=ours npm run bench:qemu (one side only)
 *   COLO_BENCH_CPU_PROF=/tmp/prof npm run bench:qemu   (ours runs under node --cpu-prof)
 *   COLO_BENCH_ROUNDS=3, COLO_BENCH_SCALE=1 (frames per run x scale), COLO_BENCH_MAX_QUEUE=65536,
 *   COLO_BENCH_ONLY=udp64,latency (a subset of the workloads and/or the latency round)
 *   COLO_BENCH_WARM_UP=500 (unrecorded pairs before the latency samples; 500 shows the start-up tail)
 *   COLO_BENCH_NODE_ARGS="--max-semi-space-size=32" (extra node options for ours)
 *   COLO_BENCH_STDERR=/tmp/lat (after the latency round, each process's stderr goes to /tmp/lat.IMPL)
 *   COLO_BENCH_SAMPLES=/tmp/s (each latency sample as the bench timed it, in µs, in order, with its start on
 *     CLOCK_MONOTONIC in µs: /tmp/s.IMPL.json)
 *   COLO_BENCH_LATENCY_BLOCK=500 (pairs per turn in the latency round; 1 alternates pair by pair)
 *   COLO_BENCH_WIRE=0 (no tcpdump on lo: the latency is timed by the bench only)
 *
 * Output: progress lines on stderr; the last line on stdout is one JSON object.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildTcp } from '../test/support/wire-build.js';
import { TcpFlag } from '../compare/wire/frame-info.js';
import { bounded, encodeFrame } from '../test/support/framed-client.js';
import { openCompare, type CompareSession, type CompareSettings, type Implementation } from '../test/support/qemu.js';
import { percentileOfSorted } from './percentile.js';
import { WireClock, wireClockUnavailable } from './qemu-wire.js';
import { FrameCounter, type FromChild, type ToChild, type WorkloadSpec } from './qemu-load.js';

const scale = Number(process.env.COLO_BENCH_SCALE ?? '1');
const impls = (process.env.COLO_BENCH_IMPLS ?? 'qemu,ours').split(',') as Implementation[];
const profileDir = process.env.COLO_BENCH_CPU_PROF;
const rounds = Number(process.env.COLO_BENCH_ROUNDS ?? '3');
const only = process.env.COLO_BENCH_ONLY?.split(',') ?? null;
const wanted = (name: string): boolean => only === null || only.includes(name);

const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** A forked load process and a way to wait for its next message of one type. */
class Child {
  private readonly inbox: FromChild[] = [];
  private readonly waiters = new Set<() => void>();
  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: FromChild) => {
      this.inbox.push(m);
      for (const w of [...this.waiters]) w();
    });
  }

  static start(role: 'generator' | 'reader'): Child {
    const file = fileURLToPath(new URL('./qemu-load.ts', import.meta.url));
    return new Child(fork(file, [], { env: { ...process.env, COLO_BENCH_ROLE: role }, stdio: 'inherit' }));
  }

  /** Lets the child exit (it exits when its IPC channel closes) and waits for it, bounded. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    if (this.proc.connected) this.proc.disconnect();
    await bounded<void>('load process exit', 10_000, (done) => {
      void exited.then(done);
      return () => {};
    });
  }

  send(m: ToChild, socket?: Socket): void {
    this.proc.send(m, socket);
  }

  next<T extends FromChild['type']>(type: T, timeoutMs = 120_000): Promise<Extract<FromChild, { type: T }>> {
    type Message = Extract<FromChild, { type: T }>;
    const take = (): Message | null => {
      const at = this.inbox.findIndex((m) => m.type === type);
      return at < 0 ? null : (this.inbox.splice(at, 1)[0] as Message);
    };
    // Taken here, not inside bounded(): a waiter that completes before bounded() has its cancel function
    // would stay registered and later swallow a message meant for the next wait.
    const already = take();
    if (already !== null) return Promise.resolve(already);
    return bounded(`the ${type} message`, timeoutMs, (done) => {
      const check = (): void => {
        const m = take();
        if (m !== null) done(m);
      };
      this.waiters.add(check);
      return () => this.waiters.delete(check);
    });
  }

  async give(role: 'pri' | 'sec' | 'out' | 'sink', socket: Socket): Promise<void> {
    this.send({ type: 'socket', role }, socket);
    await this.next('socket-taken');
  }

  /** Messages received and not yet waited for (diagnostics). */
  pending(): FromChild[] {
    return [...this.inbox];
  }

  async release(): Promise<void> {
    this.send({ type: 'release' });
    await this.next('released');
  }
}

/** CPU time (ns) of every thread of `pid` so far; QEMU's work happens on its iothread. */
function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return total;
}

/** User and system CPU (ms) of `pid`, all threads (/proc/PID/stat, clock ticks of 10 ms). */
function processUserSysMs(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // After "pid (comm) ": state is field 0, utime field 11, stime field 12.
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

interface Run {
  fps: number;
  requests: number;
  /** The compare process's CPU (all threads) per released frame. */
  cpuUsPerFrame: number;
  /** The kernel's share of that CPU (socket reads and writes), in percent. */
  sysPct: number;
  generatorCpuPct: number;
  readerCpuPct: number;
}

/** Generator + reader + measurement around one loaded connection set. */
async function drive(
  gen: Child,
  reader: Child,
  frames: number,
  expect: ToChild & { type: 'expect' },
): Promise<{ wallNs: number; generatorCpuPct: number; readerCpuPct: number }> {
  reader.send(expect);
  await reader.next('armed');
  gen.send({ type: 'go' });
  const written = await gen.next('written');
  const received = await reader.next('received', 20_000 + frames / 5).catch(async (err: unknown) => {
    reader.send({ type: 'status' });
    const status = await reader.next('status', 5_000);
    const inbox = JSON.stringify(reader.pending());
    throw new Error(`${(err as Error).message}: the reader counted ${status.count} of ${expect.count}; ${inbox}`);
  });
  if (received.count < expect.count) throw new Error(`received ${received.count} of ${frames}`);
  const wallNs = received.endNs - written.startNs;
  return {
    wallNs,
    generatorCpuPct: Math.round((written.cpuUs * 1e5) / wallNs),
    readerCpuPct: Math.round((received.cpuUs * 1e5) / wallNs),
  };
}

const settings: CompareSettings = {
  compareTimeoutMs: 60_000,
  maxQueueSize: Number(process.env.COLO_BENCH_MAX_QUEUE ?? '65536'),
};

function settingsFor(impl: Implementation): CompareSettings {
  if (impl !== 'ours') return settings;
  const nodeArgs = process.env.COLO_BENCH_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? [];
  if (profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  return nodeArgs.length === 0 ? settings : { ...settings, nodeArgs };
}

async function throughput(impl: Implementation, frames: number, gen: Child, reader: Child): Promise<Run> {
  const session = await openCompare(impl, settingsFor(impl));
  const proc = session.proc;
  try {
    // The session's connections are handed to the load processes; nothing was left unread on them.
    await gen.give('pri', session.pri.socket);
    await gen.give('sec', session.sec.socket);
    await reader.give('out', session.out.detach());
    const pid = proc.child.pid!;
    const cpu0 = processCpuNs(pid);
    const split0 = processUserSysMs(pid);
    const run = await drive(gen, reader, frames, { type: 'expect', mode: 'frames', count: frames }).catch(
      async (err: unknown) => {
        const requests = await session.notifyBarrier(5_000).then(
          () => session.checkpointRequests(),
          () => 'unknown',
        );
        const stderr = proc.stderr().slice(-1500);
        throw new Error(`${impl}: ${(err as Error).message}; DO_CHECKPOINT ${requests}; stderr: ${stderr}`);
      },
    );
    const cpuNs = processCpuNs(pid) - cpu0;
    const split1 = processUserSysMs(pid);
    const user = split1.user - split0.user;
    const sys = split1.sys - split0.sys;
    // Requests are read on the notify connection, which stayed here.
    await session.notifyBarrier(10_000);
    const requests = session.checkpointRequests();
    await gen.release();
    await reader.release();
    return {
      fps: frames / (run.wallNs / 1e9),
      requests,
      cpuUsPerFrame: +(cpuNs / 1000 / frames).toFixed(2),
      sysPct: Math.round((100 * sys) / Math.max(1, user + sys)),
      generatorCpuPct: run.generatorCpuPct,
      readerCpuPct: run.readerCpuPct,
    };
  } finally {
    await session.close();
  }
}

/** The generator alone: the same writes into the reader process, which discards them. */
async function generatorRate(frames: number, bytes: number, gen: Child, reader: Child): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted: Socket[] = [];
  const bothAccepted = bounded<void>('two sink connections', 10_000, (done) => {
    server.on('connection', (s) => {
      s.pause();
      if (accepted.push(s) === 2) done();
    });
    return () => {};
  });
  const open = (): Promise<Socket> =>
    new Promise(
      (r) =>
        void connect({ host: '127.0.0.1', port }, function (this: Socket) {
          r(this);
        }),
    );
  const clients = [await open(), await open()];
  await bothAccepted;
  try {
    for (const s of accepted) await reader.give('sink', s);
    await gen.give('pri', clients[0]);
    await gen.give('sec', clients[1]);
    const run = await drive(gen, reader, frames, { type: 'expect', mode: 'bytes', count: 2 * bytes });
    return frames / (run.wallNs / 1e9);
  } finally {
    await gen.release();
    await reader.release();
    server.close();
  }
}

const samplesFile = process.env.COLO_BENCH_SAMPLES;
const WARM_UP_PAIRS = Number(process.env.COLO_BENCH_WARM_UP ?? '20000');
const LATENCY_BLOCK = Number(process.env.COLO_BENCH_LATENCY_BLOCK ?? '500');

/** p50, p90, p99, p99.9 and max of `values`, rounded to whole µs. */
function percentiles(values: number[]): { p50: number; p90: number; p99: number; p999: number; max: number } {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => Math.round(percentileOfSorted(sorted, q));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: at(1) };
}

interface LatencySession {
  impl: Implementation;
  session: CompareSession;
  counter: FrameCounter;
  /** Per recorded pair: the bench's own timing (write returned to release read), its start, the inner seq. */
  micros: number[];
  at: number[];
  seqs: number[];
}

/**
 * Every implementation at once, taking turns in blocks: one pair in flight at a time, ~1 ms between pairs.
 * Timed on the wire (bench/qemu-wire.ts) when this process may run tcpdump on lo: from the
 * secondary's frame (the later of the pair) crossing lo to its release crossing lo. Otherwise, and also
 * alongside, by the bench: from writing the secondary's frame to reading the release, which adds the bench's
 * own write call and wake-up, and not alike to both (the header above).
 */
async function latency(samples: number): Promise<Record<string, unknown>> {
  const sessions: LatencySession[] = [];
  const wireUnavailable = wireClockUnavailable();
  let wire: WireClock | null = null;
  try {
    for (const impl of impls) {
      const session = await openCompare(impl, settingsFor(impl));
      sessions.push({ impl, session, counter: new FrameCounter(), micros: [], at: [], seqs: [] });
    }
    if (wireUnavailable === null) {
      const ports = new Set(sessions.flatMap((s) => [s.session.proc.ports.sec, s.session.proc.ports.out]));
      wire = await WireClock.start(ports);
    } else log(`latency: timed by the bench, not on the wire: ${wireUnavailable}`);
    let waiting: (() => void) | null = null;
    for (const s of sessions) {
      s.session.out.detach().on('data', (chunk: Buffer) => {
        const before = s.counter.count;
        s.counter.push(chunk);
        if (s.counter.count > before) waiting?.();
      });
    }
    const payload = Buffer.alloc(64, 7);
    // The first WARM_UP_PAIRS are neither recorded nor paced: a long-running proxy's latency, not its JIT tier-up.
    // Blocks of LATENCY_BLOCK pairs, alternating implementations (and which goes first): each sees a steady
    // stream at ~1 pair/ms, as from a quiet guest, rather than one pair between each of the other's.
    const total = WARM_UP_PAIRS + samples;
    for (let first = 0, block = 0; first < total; first += LATENCY_BLOCK, block++) {
      const order = block % 2 === 0 ? sessions : [...sessions].reverse();
      for (const s of order) {
        for (let i = first; i < Math.min(total, first + LATENCY_BLOCK); i++) {
          const seq = 1000 + i * 64;
          const spec = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 40000, seq, ack: 7777 };
          const frame = encodeFrame(buildTcp({ ...spec, flags: TcpFlag.ACK | TcpFlag.PSH, payload }));
          const target = i + 1;
          const released = bounded<void>(`${s.impl} latency pair ${target}`, 10_000, (done) => {
            waiting = () => {
              if (s.counter.count >= target) done();
            };
            return () => (waiting = null);
          });
          s.session.pri.socket.write(frame);
          const t0 = performance.now();
          const startUs = Number(process.hrtime.bigint() / 1000n);
          s.session.sec.socket.write(frame);
          await released;
          if (i < WARM_UP_PAIRS) continue;
          s.micros.push((performance.now() - t0) * 1000);
          s.at.push(startUs);
          s.seqs.push(seq);
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }
    await wire?.stop();
    const bench: Record<string, number> = {};
    const onWire: Record<string, number> = {};
    for (const s of sessions) {
      if (samplesFile) writeFileSync(`${samplesFile}.${s.impl}.json`, JSON.stringify({ at: s.at, micros: s.micros }));
      const b = percentiles(s.micros);
      bench[`${s.impl}_p50`] = b.p50;
      bench[`${s.impl}_p99`] = b.p99;
      log(
        `latency ${s.impl}, by the bench: p50 ${b.p50} us, p90 ${b.p90} us, p99 ${b.p99} us, p99.9 ${b.p999} us, ` +
          `max ${b.max} us (${samples} pairs)`,
      );
      if (wire === null) continue;
      const { sec, out } = s.session.proc.ports;
      const wireMicros: number[] = [];
      /** From the release's first bytes on the wire to its last: QEMU writes the length and the frame apart. */
      const splitMicros: number[] = [];
      for (const seq of s.seqs) {
        const from = wire.timeUs(sec, seq);
        const to = wire.timeUs(out, seq);
        const begun = wire.firstBytesUs(out, seq);
        if (from !== undefined && to !== undefined) wireMicros.push(to - from);
        if (begun !== undefined && to !== undefined) splitMicros.push(to - begun);
      }
      const w = percentiles(wireMicros);
      onWire[`${s.impl}_p50`] = w.p50;
      onWire[`${s.impl}_p99`] = w.p99;
      onWire[`${s.impl}_missing`] = s.seqs.length - wireMicros.length;
      if (wireMicros.length < s.seqs.length) {
        log(`latency ${s.impl}: ${s.seqs.length - wireMicros.length} pairs not seen whole on lo (${wire.gaps} gaps)`);
      }
      log(
        `latency ${s.impl}, on the wire: p50 ${w.p50} us, p90 ${w.p90} us, p99 ${w.p99} us, p99.9 ${w.p999} us, ` +
          `max ${w.max} us (${wireMicros.length} of ${s.seqs.length} pairs seen on lo); ` +
          `release's first to last byte p50 ${percentiles(splitMicros).p50} us`,
      );
    }
    if (wire === null) return { latency_us: bench, latency_clock: `bench (${wireUnavailable})` };
    const { gaps, segments, dropped } = wire;
    const clock = { segments, gaps, tcpdump_dropped: dropped };
    return { latency_us: onWire, latency_clock: 'wire', latency_bench_us: bench, wire_clock: clock };
  } finally {
    await wire?.stop();
    if (process.env.COLO_BENCH_STDERR) {
      for (const s of sessions) writeFileSync(`${process.env.COLO_BENCH_STDERR}.${s.impl}`, s.session.proc.stderr());
    }
    await Promise.all(sessions.map((s) => s.session.close()));
  }
}

const specs: WorkloadSpec[] = [
  { name: 'tcp1448_1conn', flows: 1, frames: Math.round(100_000 * scale) },
  { name: 'tcp1448_64conn', flows: 64, frames: Math.round(100_000 * scale) },
  { name: 'udp64', flows: 64, frames: Math.round(500_000 * scale) },
];

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const gen = Child.start('generator');
const reader = Child.start('reader');
const result: Record<string, unknown> = {};
let invalid = false;
try {
  for (const spec of specs.filter((s) => wanted(s.name))) {
    gen.send({ type: 'build', spec });
    const { frames, bytes } = await gen.next('built');
    const generator: number[] = [];
    const runs = new Map<Implementation, Run[]>(impls.map((impl) => [impl, []]));
    for (let round = 0; round < rounds; round++) {
      generator.push(await generatorRate(frames, bytes, gen, reader));
      // Rounds alternate the implementations (and who goes first) so a busy machine slows both alike.
      for (const impl of round % 2 === 0 ? impls : [...impls].reverse()) {
        const run = await throughput(impl, frames, gen, reader);
        if (run.requests !== 0) invalid = true;
        runs.get(impl)!.push(run);
        log(
          `${spec.name} round ${round + 1} ${impl}: ${Math.round(run.fps)} frames/s, ${run.cpuUsPerFrame} us CPU/frame (${run.sysPct}% sys) ` +
            `(${frames} frames, ${run.requests} requests; generator CPU ${run.generatorCpuPct}%, reader ${run.readerCpuPct}%)`,
        );
      }
    }
    const figures: Record<string, number> = {};
    for (const impl of impls) {
      const mine = runs.get(impl)!;
      figures[`${impl}_fps`] = Math.round(median(mine.map((r) => r.fps)));
      figures[`${impl}_cpu_us_per_frame`] = median(mine.map((r) => r.cpuUsPerFrame));
    }
    const ratio = figures.ours_fps && figures.qemu_fps ? +(figures.ours_fps / figures.qemu_fps).toFixed(2) : null;
    const all = [...runs.values()].flat();
    log(`${spec.name} generator alone: ${Math.round(median(generator))} frames/s`);
    result[spec.name] = {
      ...figures,
      ratio,
      generator_fps: Math.round(median(generator)),
      generator_cpu_pct_max: Math.max(...all.map((r) => r.generatorCpuPct)),
      reader_cpu_pct_max: Math.max(...all.map((r) => r.readerCpuPct)),
      frames,
      rounds,
    };
  }
  if (wanted('latency')) {
    // The load processes are not needed for it, and idle ones still wake (V8's own threads): stopped first.
    await Promise.all([gen.stop(), reader.stop()]);
    const samples = Math.round(10_000 * scale);
    const { latency_us, ...how } = await latency(samples);
    result.latency_us = { ...(latency_us as object), samples, warm_up_pairs: WARM_UP_PAIRS };
    Object.assign(result, how);
  }
} finally {
  await Promise.all([gen.stop(), reader.stop()]);
}
result.load_average = loadavg().map((x) => +x.toFixed(2));
if (invalid) result.invalid = 'a run saw DO_CHECKPOINT: some frames did not match';
console.log(JSON.stringify(result));
