import { Counter, type Registry } from 'prom-client';
import type { EngineStats, Side } from '../../compare/types.js';
import { publishCell, type Cell } from './cells.js';

export const PASSTHROUGH_METRIC = 'colo_passthrough_frames_total';

type PassthroughStats = Pick<EngineStats, 'passedThroughRulePrimary' | 'passedThroughRuleSecondary'>;

/**
 * `colo_passthrough_frames_total{side}`: frames a pass-through rule let by uncompared (primary released,
 * secondary dropped). Read from the engine's running totals at each scrape, so the frame path does no work for it.
 */
export function registerPassthroughMetrics(registry: Registry, stats: () => PassthroughStats): void {
  const cells: Record<Side, Cell> = {
    primary: { labels: { side: 'primary' }, value: 0, published: 0 },
    secondary: { labels: { side: 'secondary' }, value: 0, published: 0 },
  };
  new Counter({
    name: PASSTHROUGH_METRIC,
    help: 'Frames a pass-through rule released uncompared (primary) or dropped (secondary)',
    labelNames: ['side'],
    registers: [registry],
    collect() {
      const now = stats();
      // Counters only grow: a smaller total (none is expected: one engine per process) is ignored.
      cells.primary.value = Math.max(cells.primary.value, now.passedThroughRulePrimary);
      cells.secondary.value = Math.max(cells.secondary.value, now.passedThroughRuleSecondary);
      publishCell(this, cells.primary);
      publishCell(this, cells.secondary);
    },
  });
}
