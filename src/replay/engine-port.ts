import type { CompareEngine } from '../../compare/engine.js';

/**
 * What the replay calls of the comparison engine (compare/engine.ts CompareEngine satisfies it), so the replay
 * loop can be tested with a scripted engine. Each call's Decision may be reused by the next: the replay
 * consumes it at once. `inspect` is optional: without it the replay dissects each frame itself to find its
 * connection; with it, the push() that follows reuses the work.
 */
export type ReplayEngine = Pick<CompareEngine, 'push' | 'tick' | 'flush'> & Partial<Pick<CompareEngine, 'inspect'>>;

export interface EngineSettings {
  compareTimeoutMs: number;
  expiredScanCycleMs: number;
  maxQueueSize: number;
}
