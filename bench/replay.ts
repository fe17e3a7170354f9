/**
 * `npm run bench:replay`: frames per second through the replay path (chunked file read, merge, connection
 * counting, comparison engine, virtual clock) for a generated capture pair of matched TCP streams.
 * Usage: node --import tsx bench/replay.ts [totalFrames=1000000] [connections=64] [runs=5]
 * The last line printed is one JSON object (replay_fps: frames of both files per second, best run;
 * replay_fps_median: the median run).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTcp } from '../test/support/wire-build.js';
import { checksumUpdate32 } from '../compare/wire/checksum.js';
import { TcpFlag } from '../compare/wire/frame-info.js';
import { openCaptureFile } from '../src/capture/open.js';
import { PcapWriter } from '../src/capture/pcap.js';
import { FileSink } from '../src/capture/sink.js';
import { replayFiles } from '../src/replay/run.js';

const totalFrames = Number(process.argv[2] ?? 1_000_000);
const connections = Number(process.argv[3] ?? 64);
/** Timed runs after the warm-up: on a shared machine one run says little, the best and median of several more. */
const runs = Math.max(1, Number(process.argv[4] ?? 5));
const perSide = Math.floor(totalFrames / 2);
const PAYLOAD = 100;
/** Offsets in a frame built by buildTcp over IPv4 without options. */
const TCP_SEQ = 14 + 20 + 4;
const TCP_CHECKSUM = 14 + 20 + 16;

/**
 * One side's capture: `perSide` data segments round-robin over the connections, 1 µs apart. Frames are
 * patched from one template per connection (sequence number and checksum updated incrementally):
 * building each from scratch would make generation, not replay, the slow part.
 */
function writeSide(path: string, isnBase: number, lagNs: number): void {
  const templates: Buffer[] = [];
  for (let c = 0; c < connections; c++) {
    templates.push(
      buildTcp({
        src: '192.0.2.10',
        dst: '198.51.100.20',
        srcPort: 80,
        dstPort: 10000 + c,
        seq: isnBase,
        ack: 1,
        flags: TcpFlag.ACK | TcpFlag.PSH,
        payload: Buffer.alloc(PAYLOAD, 0x61 + (c % 26)),
      }),
    );
  }
  const sink = new FileSink(path);
  const writer = new PcapWriter(sink, { nanosecond: true });
  const frame = Buffer.alloc(templates[0].length);
  for (let i = 0; i < perSide; i++) {
    const c = i % connections;
    const template = templates[c];
    template.copy(frame);
    const seq = (isnBase + Math.floor(i / connections) * PAYLOAD) >>> 0;
    frame.writeUInt32BE(seq, TCP_SEQ);
    frame.writeUInt16BE(checksumUpdate32(template.readUInt16BE(TCP_CHECKSUM), isnBase >>> 0, seq), TCP_CHECKSUM);
    const ns = i * 1000 + lagNs;
    writer.write(1767225600 + Math.floor(ns / 1e9), ns % 1e9, frame);
  }
  writer.flush();
  sink.close();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const dir = mkdtempSync(join(tmpdir(), 'colo-bench-replay-'));
try {
  const primary = join(dir, 'primary.pcap');
  const secondary = join(dir, 'secondary.pcap');
  let t = performance.now();
  writeSide(primary, 0x10000000, 0);
  writeSide(secondary, 0x7f000000, 500);
  const generateS = (performance.now() - t) / 1000;
  const bytes = statSync(primary).size + statSync(secondary).size;
  process.stdout.write(
    `generated ${2 * perSide} frames (${connections} connections, ${(bytes / 1e6).toFixed(1)} MB) in ${generateS.toFixed(2)} s\n`,
  );

  // Reading alone, for scale: the same chunked reader the replay uses.
  t = performance.now();
  let read = 0;
  for (const path of [primary, secondary]) {
    const reader = openCaptureFile(path);
    while (reader.next()) read++;
    reader.close();
  }
  const readS = (performance.now() - t) / 1000;
  process.stdout.write(`read only: ${read} frames in ${readS.toFixed(3)} s = ${Math.round(read / readS)} frames/s\n`);

  // One warm-up run (JIT), then `runs` timed ones: best and median. CPU time is reported too: on a shared
  // machine the wall clock also measures the neighbours.
  const walls: number[] = [];
  const cpus: number[] = [];
  let summary = await replayFiles({ primary, secondary });
  for (let run = 0; run < runs; run++) {
    t = performance.now();
    const cpu = process.cpuUsage();
    summary = await replayFiles({ primary, secondary });
    const used = process.cpuUsage(cpu);
    walls.push((performance.now() - t) / 1000);
    cpus.push((used.user + used.system) / 1e6);
  }
  const best = Math.min(...walls);
  const bestCpu = Math.min(...cpus);
  const medianWall = median(walls);
  const medianCpu = median(cpus);
  const frames = summary.frames.primary + summary.frames.secondary;
  process.stdout.write(
    `replay: ${frames} frames in ${best.toFixed(3)} s = ${Math.round(frames / best)} frames/s ` +
      `(median ${Math.round(frames / medianWall)}; ${Math.round(frames / bestCpu)} frames per CPU second; released ${summary.frames.released}, ` +
      `dropped ${summary.frames.dropped}, divergences ${summary.divergences.length}; load average ${loadavg()[0].toFixed(1)})\n`,
  );
  if (summary.frames.released !== perSide || summary.divergences.length !== 0) {
    throw new Error('bench: the matched streams did not replay as matched: the numbers above are not comparable');
  }
  process.stdout.write(
    JSON.stringify({
      bench: 'replay',
      frames,
      connections,
      replay_seconds: Number(best.toFixed(3)),
      replay_fps: Math.round(frames / best),
      replay_fps_median: Math.round(frames / medianWall),
      replay_cpu_seconds: Number(bestCpu.toFixed(3)),
      replay_cpu_fps: Math.round(frames / bestCpu),
      replay_cpu_fps_median: Math.round(frames / medianCpu),
      runs,
      read_fps: Math.round(read / readS),
      released: summary.frames.released,
      dropped: summary.frames.dropped,
      load_average: Number(loadavg()[0].toFixed(2)),
      node: process.version,
    }) + '\n',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
