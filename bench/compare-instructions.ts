/**
 * The comparison engine's cost in instructions per packet, counted by callgrind: repeatable to about 0.2 % on a
 * shared, loaded machine, where `npm run bench`'s rates move by up to a factor of two. Use it to compare two
 * variants of the hot path (run it in each tree); it does not say how fast the code runs.
 *
 * The scenarios of bench/compare.ts, in its order and in one process (so the engine's push is compiled with the
 * same mixed feedback): matched 1448-byte TCP on 64 and on 10,000 connections, 64-byte UDP on 64. Each warms up,
 * then process.cpuUsage() brackets the counted rounds: callgrind starts a new count at each call
 * (--dump-before=uv_getrusage). Needs valgrind; takes a few minutes. The counts follow V8's inlining, which
 * depends on what ran before: a change can move a later scenario by tens of percent in this order and the
 * other way alone, so name one scenario to count it alone.
 *   node --import tsx bench/compare-instructions.ts [tcp1448_64conn|tcp1448_10kconn|udp64]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompareEngine } from '../compare/engine.js';
import { TcpFlag } from '../compare/wire/frame-info.js';
import { buildTcp, buildUdp } from '../test/support/wire-build.js';

const TCP_SEQ_AT = 14 + 20 + 4;

interface Scenario {
  name: string;
  connections: number;
  tcp: boolean;
  warmRounds: number;
  countedRounds: number;
}

const ALL_SCENARIOS: Scenario[] = [
  { name: 'tcp1448_64conn', connections: 64, tcp: true, warmRounds: 1500, countedRounds: 1000 },
  { name: 'tcp1448_10kconn', connections: 10000, tcp: true, warmRounds: 10, countedRounds: 10 },
  { name: 'udp64', connections: 64, tcp: false, warmRounds: 1500, countedRounds: 1000 },
];
const only = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
const SCENARIOS = ALL_SCENARIOS.filter((s) => only === undefined || s.name === only);
if (SCENARIOS.length === 0) throw new Error(`no scenario ${only}`);

function ipOf(index: number): string {
  return `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
}

function runScenario(s: Scenario): void {
  const engine = new CompareEngine({ maxConnections: s.connections * 2 });
  const primary: Buffer[] = [];
  const secondary: Buffer[] = [];
  const payload = Buffer.alloc(s.tcp ? 1448 : 22);
  for (let c = 0; c < s.connections; c++) {
    const flow = { src: '192.168.0.2', dst: ipOf(c + 1), payload };
    if (s.tcp) {
      const tcp = { ...flow, srcPort: 80, dstPort: 1024 + (c % 60000), ack: 7777, flags: TcpFlag.ACK | TcpFlag.PSH };
      primary.push(buildTcp({ ...tcp, seq: 1000 }));
      secondary.push(buildTcp({ ...tcp, seq: 900000 }));
    } else {
      const udp = { ...flow, srcPort: 53, dstPort: 2000 + c };
      primary.push(buildUdp(udp));
      secondary.push(buildUdp(udp));
    }
  }
  let released = 0;
  const rounds = s.warmRounds + s.countedRounds;
  for (let round = 0; round < rounds; round++) {
    if (round === s.warmRounds) process.cpuUsage();
    for (let c = 0; c < s.connections; c++) {
      if (s.tcp) {
        primary[c].writeUInt32BE((1000 + round * 1448) >>> 0, TCP_SEQ_AT);
        secondary[c].writeUInt32BE((900000 + round * 1448) >>> 0, TCP_SEQ_AT);
      } else primary[c][60] = secondary[c][60] = round & 255;
      engine.push('primary', primary[c], 0, round, 0);
      released += engine.push('secondary', secondary[c], 0, round, 0).release.length;
    }
  }
  process.cpuUsage();
  if (released !== s.connections * rounds)
    throw new Error(`${s.name}: released ${released} of ${s.connections * rounds}`);
}

function countUnderCallgrind(): void {
  const dir = mkdtempSync(join(tmpdir(), 'compare-instructions-'));
  try {
    const child = spawnSync(
      'valgrind',
      [
        '--tool=callgrind',
        '--dump-before=uv_getrusage',
        `--callgrind-out-file=${join(dir, 'cg.out')}`,
        process.execPath,
        // One thread and fixed seeds: compilation and hashing then happen the same way every run.
        '--single-threaded',
        '--hash-seed=1',
        '--random-seed=1',
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--child',
        ...(only === undefined ? [] : [only]),
      ],
      { encoding: 'utf8' },
    );
    if (child.status !== 0) throw new Error(`valgrind exited ${child.status}: ${child.stderr.slice(-2000)}`);
    const dumps = readdirSync(dir)
      .filter((name) => /^cg\.out\.\d+$/.test(name))
      .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
      .map((name) => Number(/^summary: (\d+)/m.exec(readFileSync(join(dir, name), 'utf8'))?.[1]));
    // Each scenario ends with two dumps (its warm-up, its counted rounds); the last 2 × scenarios are ours.
    const ours = dumps.slice(-2 * SCENARIOS.length);
    if (ours.length !== 2 * SCENARIOS.length)
      throw new Error(`expected ${2 * SCENARIOS.length} dumps, got ${dumps.length}`);
    const figures: Record<string, number> = {};
    SCENARIOS.forEach((s, i) => {
      const packets = 2 * s.connections * s.countedRounds;
      const instructions = ours[2 * i + 1];
      figures[`${s.name}_instructions_per_packet`] = Math.round(instructions / packets);
      console.log(JSON.stringify({ scenario: s.name, packets, instructions }));
    });
    console.log(JSON.stringify(figures));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--child')) for (const s of SCENARIOS) runScenario(s);
else countUnderCallgrind();
