import { formatDivergenceConnection } from '../stats/divergence-record.js';
import { divergenceVirtualMs, type ReplaySummary } from './summary.js';

function counts(record: Record<string, number | undefined>): string {
  const entries = Object.entries(record).filter(([, n]) => n !== undefined && n > 0);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

/** A few readable lines for a terminal: what `replay` prints and `demo` prints per example. */
export function formatSummary(s: ReplaySummary, options: { maxDivergences?: number } = {}): string {
  const f = s.frames;
  const lines: string[] = [];
  lines.push(
    `frames: primary ${f.primary}, secondary ${f.secondary} -> released ${f.released}, dropped ${f.dropped}, ` +
      `malformed ${f.malformed}, held at end ${f.heldAtEnd}`,
  );
  if (f.malformed > 0) lines.push(`malformed: ${counts(s.malformed.byReason)}`);
  lines.push(`checkpoints: ${s.checkpoints.total} (${counts(s.checkpoints.byReason)})`);
  const pass = s.passthrough;
  if (pass !== undefined && pass.rules.length > 0) {
    const rules = pass.rules.map((r) => `${r.rule}: ${r.frames} frames`).join(', ');
    lines.push(`passed through uncompared: ${pass.releasedPrimary} primary frames released early (${rules})`);
  }
  const m = s.modes;
  if (m !== undefined) {
    const r = m.releaseLatencyMs;
    lines.push(
      `mode ${m.mode}: ${m.switches.length} switches (${counts(m.switchesByKey)}); compare ${m.timeInMs.compare} ms, ` +
        `periodic ${m.timeInMs.periodic} ms; paused ${m.pausedMs} ms (${(m.pausedShare * 100).toFixed(1)} %); ` +
        `release latency p50 ${r.p50} ms, p99 ${r.p99} ms`,
    );
  }
  lines.push(`divergences: ${s.divergences.length} (${counts(s.divergencesByReason)})`);
  const shown = s.divergences.slice(0, options.maxDivergences ?? 5);
  for (const d of shown) {
    const offset = d.offset === null ? '' : ` at offset ${d.offset}`;
    const at = divergenceVirtualMs(s, d).toFixed(3);
    lines.push(`  ${at} ms  ${d.reason}${offset}  ${formatDivergenceConnection(d.connection)}`);
  }
  if (s.divergences.length > shown.length) lines.push(`  ... and ${s.divergences.length - shown.length} more`);
  const l = s.compareLatencyMs;
  if (l.count > 0) lines.push(`compare latency: p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`);
  lines.push(`connections: ${s.connections.length}; virtual time ${s.capture.endMs} ms`);
  const c = s.clock;
  if (c.jumps > 0) {
    lines.push(
      `clock jumps: ${c.jumps} over ${c.jumpedMs} ms of empty time (largest ${c.largestJumpMs} ms), ${c.timersSkipped} idle CHKPOINT_TIMER firings skipped`,
    );
  }
  for (const e of s.readErrors) lines.push(`read error (${e.side}, after ${e.framesBefore} frames): ${e.message}`);
  return lines.join('\n') + '\n';
}
