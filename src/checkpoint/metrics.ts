import type { CheckpointEngine, CheckpointReport } from './engine.js';

/** The part of the metrics module (src/stats/metrics.ts, ColoMetrics) the engine feeds. */
export interface CheckpointMetricsSink {
  recordCheckpoint(
    outcome: 'ok' | 'failed' | 'aborted',
    phases: Partial<Record<'suspend' | 'save' | 'transfer' | 'load' | 'total', number>>,
  ): void;
}

/**
 * Records every finished checkpoint: ok; aborted (the primary's own driver failed, the secondary stayed);
 * failed (the secondary was lost). Phases not reached are left out. Returns the unsubscribe function.
 */
export function recordCheckpointMetrics(engine: CheckpointEngine, metrics: CheckpointMetricsSink): () => void {
  const listener = (report: CheckpointReport): void => {
    const outcome = report.ok ? 'ok' : report.secondaryLost ? 'failed' : 'aborted';
    const phases: Partial<Record<'suspend' | 'save' | 'transfer' | 'load' | 'total', number>> = {};
    for (const phase of ['suspend', 'save', 'transfer', 'load', 'total'] as const) {
      const ms = report.durations[phase];
      if (ms !== null) phases[phase] = ms;
    }
    metrics.recordCheckpoint(outcome, phases);
  };
  engine.on('checkpoint', listener);
  return () => engine.off('checkpoint', listener);
}
