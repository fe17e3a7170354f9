import type { ColoMetrics } from '../stats/metrics.js';
import type { CheckpointEngine, CheckpointReport } from './engine.js';

/**
 * Counts every checkpoint the engine finishes in the metrics: by outcome (ok; aborted: the primary's own
 * driver failed and the secondary stayed; failed: the secondary was lost) and by the phases it reached.
 * Returns the unsubscribe function.
 */
export function recordCheckpointMetrics(
  engine: CheckpointEngine,
  metrics: Pick<ColoMetrics, 'checkpoint'>,
): () => void {
  const listener = (report: CheckpointReport): void => metrics.checkpoint(report);
  engine.on('checkpoint', listener);
  return () => engine.off('checkpoint', listener);
}
