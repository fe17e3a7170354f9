import type { Side } from '../../compare/types.js';
import type { Mode } from '../../proxy/inline.js';
import type { CheckpointOutcomeLabel } from '../checkpoint/engine.js';
import type { DivergenceRecord } from './divergence-record.js';
import type { ReportedPhase } from './metric-names.js';

/** Divergence records /stats keeps: enough to see what the last checkpoints were about, bounded. */
export const RECENT_DIVERGENCES = 16;

/** The JSON served at /stats and written by `--json`-style outputs. Documented in docs/statistics.md. */
export interface MetricsSnapshot {
  mode: Mode;
  frames: {
    in: Record<Side, number>;
    released: number;
    secondaryDropped: number;
    malformed: { total: number; bySide: Record<Side, number>; byReason: Record<string, number> };
  };
  divergences: {
    total: number;
    byReason: Record<string, number>;
    byProtocol: Record<string, number>;
    /** The last RECENT_DIVERGENCES divergences, oldest first (src/stats/divergence-record.ts). */
    recent: DivergenceRecord[];
  };
  checkpoints: {
    requests: { total: number; byReason: Record<string, number> };
    completed: Record<CheckpointOutcomeLabel, number>;
    /** Phase durations (ms) of the most recent checkpoint that reported any; null before the first. */
    lastPhasesMs: Partial<Record<ReportedPhase, number>> | null;
  };
  held: { frames: number; bytes: number };
  queueDepth: Record<Side, number>;
  connections: number;
  compareLatency: { count: number; meanMs: number | null };
}
