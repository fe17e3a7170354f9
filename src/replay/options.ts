import type { PassthroughRule } from '../../compare/passthrough.js';
import type { EngineSettings } from './engine-port.js';
import type { ReplayModeOptions } from './modes.js';
import type { ReplaySummary } from './summary.js';

/** What a replay is run with: the engine's settings, the virtual clock's timers and the lab's models. */
export interface ReplayOptions extends EngineSettings {
  /** CHKPOINT_TIMER: a periodic checkpoint this long after the last one started. */
  checkpointTimerMs: number;
  /** Simulated checkpoint duration: engine.flush() runs this long after the checkpoint starts. */
  checkpointDurationMs: number;
  /** 0 = as fast as possible; 1 = real time; 2 = twice as fast. */
  speed: number;
  /** Flows the engine releases uncompared (compare/passthrough.ts); replayFiles() gives them to its engine. */
  passthrough?: readonly PassthroughRule[];
  /** Protection mode (compare/protection-mode.ts); absent: compare, and the summary has no `modes`. */
  modes?: ReplayModeOptions;
  /** Set: checkpoint pauses delay the guests, busy this share of the time (guest-lag.ts). Unset: no delay. */
  guestBusyShare?: number;
}

export const defaultReplayOptions: ReplayOptions = {
  compareTimeoutMs: 3000,
  expiredScanCycleMs: 1000,
  maxQueueSize: 1024,
  checkpointTimerMs: 10000,
  checkpointDurationMs: 20,
  speed: 0,
};

/** The options as the summary records them: the numbers that shape the result, not the rules or modes. */
export function summaryOptions(o: ReplayOptions): ReplaySummary['options'] {
  return {
    compareTimeoutMs: o.compareTimeoutMs,
    expiredScanCycleMs: o.expiredScanCycleMs,
    maxQueueSize: o.maxQueueSize,
    checkpointTimerMs: o.checkpointTimerMs,
    checkpointDurationMs: o.checkpointDurationMs,
    speed: o.speed,
    ...(o.guestBusyShare === undefined ? {} : { guestBusyShare: o.guestBusyShare }),
  };
}
