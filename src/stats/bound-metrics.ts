import { Counter, type Registry } from 'prom-client';
import type { EngineStats, HeldBound, Side } from '../../compare/types.js';
import { CellTable, publishCell, type Cell } from './cells.js';

/** Metric names for the comparison engine's hard bounds (docs/compare.md, "Memory bounds"). */
export const BoundMetricName = {
  heldBoundFlushes: 'colo_held_bound_flushes_total',
  heldBoundFrames: 'colo_held_bound_frames_total',
  connectionsRefused: 'colo_connections_refused_total',
  connectionEvictions: 'colo_connection_evictions_total',
} as const;

/** The engine totals these counters follow. */
export type BoundStats = Pick<
  EngineStats,
  'heldBoundFlushes' | 'heldBoundReleased' | 'heldBoundDropped' | 'connectionsRefused' | 'evictions'
>;

/**
 * Counters for what the engine did at its bounds, registered next to ColoMetrics' (same registry). They follow
 * the engine's own running totals (one engine per process): update() takes them off the per-frame path, and
 * each scrape publishes the growth since the last one, so the counts are exact.
 */
export class BoundMetrics {
  private readonly flushes = new CellTable(['bound']);
  private readonly frames: Record<Side, Cell> = {
    primary: { labels: { side: 'primary' }, value: 0, published: 0 },
    secondary: { labels: { side: 'secondary' }, value: 0, published: 0 },
  };
  private readonly refused: Cell = { labels: {}, value: 0, published: 0 };
  private readonly evictions: Cell = { labels: {}, value: 0, published: 0 };

  constructor(registry: Registry) {
    const registers = [registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Counter({
      name: BoundMetricName.heldBoundFlushes,
      help: 'Flushes forced by a bound on held frames or bytes (held primaries released uncompared), by bound',
      labelNames: ['bound'],
      registers,
      collect() {
        self.flushes.publish(this);
      },
    });
    new Counter({
      name: BoundMetricName.heldBoundFrames,
      help: 'Frames those flushes released uncompared (primary) or dropped (secondary)',
      labelNames: ['side'],
      registers,
      collect() {
        publishCell(this, self.frames.primary);
        publishCell(this, self.frames.secondary);
      },
    });
    new Counter({
      name: BoundMetricName.connectionsRefused,
      help: 'Frames of new connections passed uncompared because the connection table was full of busy ones',
      registers,
      collect() {
        publishCell(this, self.refused);
      },
    });
    new Counter({
      name: BoundMetricName.connectionEvictions,
      help: 'Idle connections the comparison engine forgot (to make room, or idle too long)',
      registers,
      collect() {
        publishCell(this, self.evictions);
      },
    });
  }

  /** The engine's totals now (EngineStats); counters only grow, so a smaller total is ignored. */
  update(stats: BoundStats): void {
    for (const [bound, n] of Object.entries(stats.heldBoundFlushes) as [HeldBound, number][]) {
      const cell = this.flushes.cell(bound);
      cell.value = Math.max(cell.value, n);
    }
    this.frames.primary.value = Math.max(this.frames.primary.value, stats.heldBoundReleased);
    this.frames.secondary.value = Math.max(this.frames.secondary.value, stats.heldBoundDropped);
    this.refused.value = Math.max(this.refused.value, stats.connectionsRefused);
    this.evictions.value = Math.max(this.evictions.value, stats.evictions);
  }
}
