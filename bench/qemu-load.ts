/**
 * bench:qemu's load processes. The generator (writes primary_in and secondary_in) and the reader (counts
 * what outdev releases) each run in a child process of their own, so neither shares a thread with the other
 * or with the orchestrator: on 2 cores a generator and a reader in one process became one busy thread that
 * bounded the figures it was meant to measure.
 *
 * The orchestrator (bench/qemu.ts) connects the sockets and hands them over as handles over the IPC channel
 * (the children never see a port number, so QEMU and ours get byte-identical connections). Times are
 * process.hrtime (CLOCK_MONOTONIC: one clock for every process on the machine), in nanoseconds.
 *
 *   forked by bench/qemu.ts with COLO_BENCH_ROLE=generator or COLO_BENCH_ROLE=reader
 */
import type { Socket } from 'node:net';
import { buildTcp, buildUdp } from '../test/support/wire-build.js';
import { TcpFlag } from '../compare/wire/frame-info.js';
import { encodeFrame } from '../test/support/framed-client.js';

export type WorkloadName = 'tcp1448_1conn' | 'tcp1448_64conn' | 'udp64';

export interface WorkloadSpec {
  name: WorkloadName;
  /** TCP connections or UDP flows. */
  flows: number;
  frames: number;
}

/** Messages from the orchestrator. A message with a socket handle names what the socket is for. */
export type ToChild =
  | { type: 'build'; spec: WorkloadSpec }
  | { type: 'socket'; role: 'pri' | 'sec' | 'out' | 'sink' }
  | { type: 'go' }
  | { type: 'expect'; mode: 'frames' | 'bytes'; count: number }
  | { type: 'status' }
  | { type: 'release' };

export type FromChild =
  | { type: 'built'; frames: number; bytes: number }
  | { type: 'socket-taken'; role: string }
  | { type: 'written'; startNs: number; endNs: number; cpuUs: number }
  | { type: 'armed' }
  | { type: 'received'; firstNs: number; endNs: number; count: number; cpuUs: number }
  | { type: 'status'; count: number }
  | { type: 'released' };

/** Batch size for the generator's writes: large writes, few syscalls, few drain waits. */
const BATCH_BYTES = 256 * 1024;

function batches(frames: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  let size = 0;
  for (const f of frames) {
    const framed = encodeFrame(f);
    pending.push(framed);
    size += framed.length;
    if (size >= BATCH_BYTES) {
      out.push(Buffer.concat(pending));
      pending = [];
      size = 0;
    }
  }
  if (pending.length > 0) out.push(Buffer.concat(pending));
  return out;
}

/**
 * Matched TCP streams, 1448-byte payloads, connections interleaved segment by segment. The secondary's copy
 * is byte-identical: the rewriter has already mapped it into the primary's sequence space.
 */
function tcpFrames(connections: number, total: number): Buffer[] {
  const payload = Buffer.alloc(1448);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 255;
  const frames: Buffer[] = [];
  const perConnection = Math.ceil(total / connections);
  for (let s = 0; s < perConnection; s++) {
    for (let c = 0; c < connections; c++) {
      const seq = (1000 + s * 1448) >>> 0;
      const spec = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 20000 + c, seq, ack: 7777 };
      frames.push(buildTcp({ ...spec, flags: TcpFlag.ACK | TcpFlag.PSH, payload }));
    }
  }
  return frames;
}

/**
 * 64-byte frames on `flows` flows; every datagram of a flow is identical, so QEMU's newest-first matching
 * and our FIFO matching both pair any primary with any secondary of its flow (no mismatch from reordering).
 */
function udpFrames(flows: number, total: number): Buffer[] {
  const perFlow = Array.from({ length: flows }, (_, c) =>
    buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5000, dstPort: 30000 + c, payload: Buffer.alloc(22, c) }),
  );
  return Array.from({ length: total }, (_, i) => perFlow[i % flows]);
}

export function buildWorkload(spec: WorkloadSpec): { frames: number; stream: Buffer[] } {
  const frames = spec.name === 'udp64' ? udpFrames(spec.flows, spec.frames) : tcpFrames(spec.flows, spec.frames);
  return { frames: frames.length, stream: batches(frames) };
}

/** Counts length-prefixed frames in a byte stream without copying them. */
export class FrameCounter {
  count = 0;
  private skip = 0;
  private head = 0;
  private headHave = 0;

  push(chunk: Buffer): void {
    let at = 0;
    const n = chunk.length;
    while (at < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - at);
        this.skip -= take;
        at += take;
        if (this.skip === 0) this.count++;
        continue;
      }
      if (this.headHave === 0 && n - at >= 4) {
        this.skip = chunk.readUInt32BE(at);
        at += 4;
      } else {
        this.head = (this.head * 256 + chunk[at++]) >>> 0;
        if (++this.headHave < 4) continue;
        this.skip = this.head;
        this.head = 0;
        this.headHave = 0;
      }
      if (this.skip === 0) this.count++;
    }
  }
}

const nowNs = (): number => Number(process.hrtime.bigint());
const cpuUs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return d.user + d.system;
};
const send = (m: FromChild): void => void process.send?.(m);

/** Writes both streams batch by batch, alternating sides, waiting for drain when the kernel pushes back. */
function generator(): void {
  let stream: Buffer[] = [];
  const sockets: Record<string, Socket> = {};
  const drained = (s: Socket): Promise<void> => new Promise((r) => s.once('drain', r));
  const go = async (): Promise<void> => {
    const pri = sockets.pri;
    const sec = sockets.sec;
    const cpu0 = process.cpuUsage();
    const startNs = nowNs();
    for (let i = 0; i < stream.length; i++) {
      pri.write(stream[i]);
      sec.write(stream[i]);
      if (pri.writableNeedDrain) await drained(pri);
      if (sec.writableNeedDrain) await drained(sec);
    }
    send({ type: 'written', startNs, endNs: nowNs(), cpuUs: cpuUs(cpu0) });
  };
  process.on('message', (m: ToChild, handle?: Socket) => {
    if (m.type === 'build') {
      const built = buildWorkload(m.spec);
      stream = built.stream;
      send({ type: 'built', frames: built.frames, bytes: stream.reduce((sum, b) => sum + b.length, 0) });
    } else if (m.type === 'socket' && handle !== undefined) {
      handle.setNoDelay(true);
      sockets[m.role] = handle;
      send({ type: 'socket-taken', role: m.role });
    } else if (m.type === 'go') {
      void go();
    } else if (m.type === 'release') {
      for (const key of Object.keys(sockets)) sockets[key].destroy();
      send({ type: 'released' });
    }
  });
}

/** Counts frames on outdev (or raw bytes on the sinks of a generator-alone run) and reports the last one. */
function reader(): void {
  const sockets: Socket[] = [];
  let mode: 'frames' | 'bytes' = 'frames';
  let expected = Infinity;
  let counter = new FrameCounter();
  let bytes = 0;
  let firstNs = 0;
  let cpu0 = process.cpuUsage();
  let reported = false;
  const onData = (chunk: Buffer): void => {
    if (firstNs === 0) {
      firstNs = nowNs();
      cpu0 = process.cpuUsage();
    }
    let count: number;
    if (mode === 'frames') {
      counter.push(chunk);
      count = counter.count;
    } else {
      bytes += chunk.length;
      count = bytes;
    }
    if (!reported && count >= expected) {
      reported = true;
      send({ type: 'received', firstNs, endNs: nowNs(), count, cpuUs: cpuUs(cpu0) });
    }
  };
  process.on('message', (m: ToChild, handle?: Socket) => {
    if (m.type === 'socket' && handle !== undefined) {
      handle.on('data', onData);
      handle.on('error', () => {});
      sockets.push(handle);
      send({ type: 'socket-taken', role: m.role });
    } else if (m.type === 'expect') {
      mode = m.mode;
      expected = m.count;
      counter = new FrameCounter();
      bytes = 0;
      firstNs = 0;
      reported = false;
      send({ type: 'armed' });
    } else if (m.type === 'status') {
      send({ type: 'status', count: mode === 'frames' ? counter.count : bytes });
    } else if (m.type === 'release') {
      for (const s of sockets.splice(0)) s.destroy();
      send({ type: 'released' });
    }
  });
}

/** Set by the orchestrator when it forks this file; imported without it, nothing runs. */
const role = process.env.COLO_BENCH_ROLE;
if (role === 'generator' || role === 'reader') {
  if (role === 'generator') generator();
  else reader();
  // The orchestrator went away (finished or crashed): so do we.
  process.on('disconnect', () => process.exit(0));
}
