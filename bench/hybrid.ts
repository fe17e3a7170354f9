/**
 * `npm run bench:hybrid`: one mixed workload, a share of its replies nondeterministic (rising step by
 * step), replayed in compare, periodic and hybrid modes on the virtual clock (docs/benchmarks.md,
 * "Protection modes"). Checkpoint pauses delay the guests (ReplayOptions.guestBusyShare), so crowded
 * checkpoints cost what they cost a real pair: a backlog the clients wait for.
 * Usage: node --import tsx bench/hybrid.ts [durationMs=60000] [busyShare=0.5]
 * The last line printed is one JSON object: `compare`, `periodic`, `hybrid`, each a list of steps
 * {nondeterministic_share, checkpoints_per_s, paused_share, latency_p50_ms, latency_p99_ms}.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultModeThresholds, type ModeThresholds, type ProtectionMode } from '../compare/protection-mode.js';
import { replayFiles } from '../src/replay/run.js';
import { buildModeWorkload } from '../test/support/mode-workload.js';

const durationMs = Number(process.argv[2] ?? 60_000);
const busyShare = Number(process.argv[3] ?? 0.5);
/** HYBRID_THRESHOLDS='{"windowMs":2000}': thresholds over the defaults, to try others. */
const thresholds: ModeThresholds = {
  ...defaultModeThresholds,
  ...(JSON.parse(process.env.HYBRID_THRESHOLDS ?? '{}') as Partial<ModeThresholds>),
};
const SHARES = [0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1];
const MODES: readonly ProtectionMode[] = ['compare', 'periodic', 'hybrid'];
/** 200 replies a second over 32 flows: a busy service, each reply a UDP datagram. */
const INTERVAL_MS = 5;
const FLOWS = 32;

interface Step {
  nondeterministic_share: number;
  checkpoints_per_s: number;
  paused_share: number;
  latency_p50_ms: number | null;
  latency_p99_ms: number | null;
  switches: number;
}

/** Which replies differ: a fixed pseudo-random pick (an integer hash), the same in every mode. */
function picks(share: number): (i: number) => boolean {
  return (i) => {
    let x = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return ((x ^ (x >>> 16)) >>> 0) / 2 ** 32 < share;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'colo-bench-hybrid-'));
const results: Record<string, Step[]> = { compare: [], periodic: [], hybrid: [] };
try {
  for (const share of SHARES) {
    const w = buildModeWorkload({ durationMs, intervalMs: INTERVAL_MS, flows: FLOWS, differs: picks(share) });
    const primary = join(dir, 'p.pcap');
    const secondary = join(dir, 's.pcap');
    writeFileSync(primary, w.primary);
    writeFileSync(secondary, w.secondary);
    const line: string[] = [`share ${share.toFixed(2)}:`];
    for (const mode of MODES) {
      const summary = await replayFiles(
        { primary, secondary },
        { guestBusyShare: busyShare, modes: { mode, thresholds } },
      );
      const m = summary.modes!;
      results[mode].push({
        nondeterministic_share: share,
        checkpoints_per_s: m.checkpointsPerSecond,
        paused_share: m.pausedShare,
        latency_p50_ms: m.releaseLatencyMs.p50,
        latency_p99_ms: m.releaseLatencyMs.p99,
        switches: m.switches.length,
      });
      line.push(`${mode} p99 ${m.releaseLatencyMs.p99} ms (${m.checkpointsPerSecond}/s, ${m.switches.length} sw)`);
    }
    console.log(line.join('  '));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const worst = results.hybrid.map((h, i) => {
  const best = Math.min(results.compare[i].latency_p99_ms ?? Infinity, results.periodic[i].latency_p99_ms ?? Infinity);
  const mine = h.latency_p99_ms ?? Infinity;
  return mine === best ? 1 : mine / best;
});
console.log(`hybrid p99 / best of the others, per step: ${worst.map((r) => r.toFixed(2)).join(' ')}`);
console.log(JSON.stringify(results));
