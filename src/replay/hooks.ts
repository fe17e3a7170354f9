import type { ModeSwitch } from '../../compare/protection-mode.js';
import type { Divergence } from '../../compare/types.js';
import type { ReplayCheckpoint } from './summary.js';

export interface ReplayProgress {
  frames: number;
  /** 0..1 by bytes read, or NaN when the sizes are unknown. */
  fraction: number;
  virtualMs: number;
}

export interface ReplayHooks {
  /** Before the first frame: the capture time that virtual time 0 stands for; null when there is no frame. */
  onStart?(origin: { seconds: number; nanoseconds: number } | null): void;
  /** Every divergence, as the engine reported it (its packets stay valid: they are the captured frames). */
  onDivergence?(divergence: Divergence): void;
  /** Every checkpoint, when it completes. */
  onCheckpoint?(checkpoint: ReplayCheckpoint): void;
  /** Every hybrid mode switch, when the controller makes it. */
  onModeSwitch?(change: ModeSwitch): void;
  /** Every jump of the clock over empty time (docs/replay.md, "The virtual clock"). */
  onJump?(jump: ClockJump): void;
  onProgress?(progress: ReplayProgress): void;
  /** Frames between progress calls (and between yields to the event loop). Default 65536. */
  progressEvery?: number;
}

/** The clock skipped empty time up to a frame instead of running idle timers through it. */
export interface ClockJump {
  /** Virtual time of the last event run before the jump. */
  from: number;
  /** Virtual time of the frame the clock jumped to. */
  to: number;
  /** CHKPOINT_TIMER firings skipped (each would have been an idle checkpoint). */
  timersSkipped: number;
}
