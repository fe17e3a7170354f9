import type { Divergence, Packet, Side } from '../../compare/types.js';
import type { FrameInfo, MalformedReason } from '../../compare/wire/frame-info.js';

/**
 * What the replay needs of the comparison engine (compare/engine.ts CompareEngine satisfies it). Kept
 * structural so the replay loop can be tested with a scripted engine and the two evolve independently.
 */
export interface EngineDecision {
  readonly release: readonly Packet[];
  readonly drop: readonly Packet[];
  readonly divergences: readonly Divergence[];
  readonly malformed: readonly { side: Side; reason: MalformedReason; frame: Buffer }[];
}

export interface ReplayEngine {
  /** The returned decision may be reused by the next call: the replay consumes it at once. */
  push(side: Side, frame: Buffer, start: number, now: number, tag?: number): EngineDecision;
  /**
   * Optional: dissects a frame ahead of its push(), which then reuses the work; null when the frame is
   * malformed. Without it the replay dissects each frame itself to find its connection.
   */
  inspect?(frame: Buffer, start: number): Readonly<FrameInfo> | null;
  tick(now: number): EngineDecision;
  flush(now: number): EngineDecision;
}

export interface EngineSettings {
  compareTimeoutMs: number;
  expiredScanCycleMs: number;
  maxQueueSize: number;
}
