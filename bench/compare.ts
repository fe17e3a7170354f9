/**
 * Comparison engine throughput and memory. Frames are built first; only push() is timed. Packets per second
 * count both sides (a primary and its secondary copy are two packets). Each scenario runs on fresh engines
 * several times after one warm-up run; the median run is reported. The first segment of every connection is
 * pushed untimed, so the figures are for established connections (lookup, compare, release), not for creation.
 *
 * Output: one JSON object per scenario, then a last line with every figure in one object.
 *   npm run bench          (node --import tsx bench/compare.ts)
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CompareEngine } from '../compare/engine.js';
import { buildTcp, buildUdp } from '../compare/wire/build.js';
import { TcpFlag } from '../compare/wire/frame-info.js';

// global.gc without requiring the caller to pass --expose-gc: the flag is set, then a fresh context exposes gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Flow {
  primary: Buffer[];
  secondary: Buffer[];
}

function ipOf(index: number): string {
  return `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
}

/** `segments` segments of `size` payload bytes per connection; the secondary uses another ISN. */
function tcpFlows(connections: number, segments: number, size: number): Flow[] {
  const flows: Flow[] = [];
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 31) & 255;
  for (let c = 0; c < connections; c++) {
    const flow: Flow = { primary: [], secondary: [] };
    for (let s = 0; s < segments; s++) {
      const common = {
        src: '192.168.0.2',
        dst: ipOf(c + 1),
        srcPort: 80,
        dstPort: 1024 + (c % 60000),
        ack: 7777,
        flags: TcpFlag.ACK | TcpFlag.PSH,
        payload,
      };
      flow.primary.push(buildTcp({ ...common, seq: (1000 + s * size) >>> 0 }));
      flow.secondary.push(buildTcp({ ...common, seq: (900000 + s * size) >>> 0 }));
    }
    flows.push(flow);
  }
  return flows;
}

function udpFlows(connections: number, datagrams: number, frameSize: number): Flow[] {
  const flows: Flow[] = [];
  for (let c = 0; c < connections; c++) {
    const flow: Flow = { primary: [], secondary: [] };
    for (let d = 0; d < datagrams; d++) {
      const payload = Buffer.alloc(frameSize - 42);
      payload.writeUInt32BE(d, 0);
      const spec = { src: '192.168.0.2', dst: ipOf(c + 1), srcPort: 53, dstPort: 2000 + c, payload };
      flow.primary.push(buildUdp(spec));
      flow.secondary.push(buildUdp(spec));
    }
    flows.push(flow);
  }
  return flows;
}

/** One timed run on a fresh engine: packets per second over packets 1.. of every flow. */
function run(flows: Flow[], perFlow: number): number {
  const engine = new CompareEngine({ maxConnections: flows.length * 2 });
  let now = 0;
  let released = 0;
  for (const flow of flows) {
    engine.push('primary', flow.primary[0], 0, now, 0);
    released += engine.push('secondary', flow.secondary[0], 0, now, 0).release.length;
  }
  const started = process.hrtime.bigint();
  for (let i = 1; i < perFlow; i++) {
    now++;
    for (let c = 0; c < flows.length; c++) {
      const flow = flows[c];
      engine.push('primary', flow.primary[i], 0, now, 0);
      released += engine.push('secondary', flow.secondary[i], 0, now, 0).release.length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const expected = flows.length * perFlow;
  if (released !== expected) throw new Error(`released ${released} of ${expected}: the bench is not comparing equal`);
  return (2 * flows.length * (perFlow - 1)) / seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function scenario(name: string, flows: Flow[], perFlow: number, runs: number): number {
  run(flows, perFlow);
  const results: number[] = [];
  for (let r = 0; r < runs; r++) {
    gc();
    results.push(run(flows, perFlow));
  }
  const pps = Math.round(median(results));
  console.log(JSON.stringify({ scenario: name, pps, runs: results.map(Math.round) }));
  return pps;
}

/** Heap (JS heap plus array buffers) per idle tracked connection: each saw one equal segment per side. */
function idleConnectionBytes(connections: number): number {
  const flows = tcpFlows(connections, 1, 16);
  const engine = new CompareEngine({ maxConnections: connections + 1 });
  gc();
  const before = process.memoryUsage();
  for (const flow of flows) {
    engine.push('primary', flow.primary[0], 0, 0, 0);
    engine.push('secondary', flow.secondary[0], 0, 0, 0);
  }
  engine.flush(0);
  gc();
  const after = process.memoryUsage();
  if (engine.stats().connections !== connections) throw new Error('connections were evicted');
  const bytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  console.log(JSON.stringify({ scenario: 'idle_conn', connections, bytes }));
  return Math.round(bytes / connections);
}

const tcp64 = scenario('tcp1448_64conn', tcpFlows(64, 400, 1448), 400, 7);
const tcp10k = scenario('tcp1448_10kconn', tcpFlows(10000, 4, 1448), 4, 7);
const udp64 = scenario('udp64', udpFlows(64, 800, 64), 800, 7);
const idle = idleConnectionBytes(100000);
console.log(
  JSON.stringify({ tcp1448_64conn_pps: tcp64, tcp1448_10kconn_pps: tcp10k, udp64_pps: udp64, idle_conn_bytes: idle }),
);
