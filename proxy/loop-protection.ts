import {
  defaultModeThresholds,
  ModeController,
  type ActiveMode,
  type ModeSwitch,
  type ModeThresholds,
  type ProtectionMode,
} from '../compare/protection-mode.js';
import type { Packet } from '../compare/types.js';
import type { LoopCounters, LoopProtectionOptions } from './compare-loop-types.js';
import { PeriodicHold } from './periodic-hold.js';

/** The loop's protection when none is given: compare mode, nothing ever held. */
export const compareModeOnly: LoopProtectionOptions = {
  mode: 'compare',
  thresholds: defaultModeThresholds,
  bounds: { maxFrames: Infinity, maxBytes: Infinity },
};

/** Switches kept for the drop-in's /stats (the counters count them all). */
export const RECENT_SWITCHES = 16;

/** The protection mode as the drop-in's /stats shows it (docs/compare.md, "Protection modes"). */
export interface ProtectionStatus {
  mode: ProtectionMode;
  /** What is in force now: hybrid is always one of the two. */
  active: ActiveMode;
  thresholds: ModeThresholds;
  /** Primary frames periodic mode holds for a checkpoint now, and their bytes. */
  heldFrames: number;
  heldBytes: number;
  timeInMs: Record<ActiveMode, number>;
  /** The last RECENT_SWITCHES switches, oldest first; `at` is the drop-in's clock (epoch ms). */
  switches: ModeSwitch[];
}

/**
 * The compare loop's protection-mode state: the controller (compare/protection-mode.ts), the frames periodic
 * mode holds, and which of them a checkpoint releases. No I/O and no timers: the loop (proxy/compare-loop.ts)
 * sends the requests, runs the period timer and writes what this hands back.
 *
 * A checkpoint releases the held frames that arrived before its request was sent, which is the output of
 * the state it saved. A COLO_CHECKPOINT nobody here asked for (libxl's own) started at a time the loop does
 * not know, so in periodic mode it releases none of them; in compare mode every held frame was compared, so
 * any checkpoint releases them all.
 */
export class LoopProtection {
  readonly controller: ModeController;
  readonly hold: PeriodicHold;
  /** When the outstanding request was sent (-1: none sent), and the primary arrival number it cuts at. */
  private sentAt = -1;
  private cut = 0;
  /** When the last requested checkpoint started: periodic mode asks again a period after it. */
  private lastSentAt: number;
  /** What the last completed checkpoint releases from the hold (arrival numbers up to this). */
  private releaseCut = -Infinity;

  constructor(
    readonly options: LoopProtectionOptions,
    private readonly counters: LoopCounters,
    start: number,
  ) {
    this.controller = new ModeController(options.mode, options.thresholds, start, RECENT_SWITCHES);
    this.hold = new PeriodicHold(options.bounds);
    this.lastSentAt = start;
  }

  get periodic(): boolean {
    return this.controller.active() === 'periodic';
  }

  /** Whether released frames go to the hold: in periodic mode, and after a switch back while frames still wait. */
  get holding(): boolean {
    return this.hold.frames !== 0 || this.controller.active() === 'periodic';
  }

  /**
   * Frames the engine released while holding: pass-through frames are appended to `now` (no checkpoint
   * protects them, so none is waited for), the rest are held.
   */
  route(release: readonly Packet[], now: Packet[]): void {
    for (let i = 0; i < release.length; i++) {
      const packet = release[i];
      if (packet.passedByRule === true) now.push(packet);
      else this.hold.push(packet);
    }
  }

  /** A divergence found while periodic mode held the output. */
  backgroundDivergence(at: number): void {
    this.counters.backgroundDivergences++;
    this.controller.backgroundDivergence(at);
  }

  /**
   * A DO_CHECKPOINT went out at `at`, after `arrivals` primary frames: the switch a divergence's checkpoint
   * caused, if any.
   */
  requested(at: number, arrivals: number, byDivergence: boolean): ModeSwitch | null {
    this.sentAt = at;
    this.lastSentAt = at;
    this.cut = arrivals;
    return byDivergence ? this.record(this.controller.divergenceCheckpoint(at)) : null;
  }

  /**
   * COLO_CHECKPOINT at `at`: judges the pause since the request (hybrid) and fixes what takeReleased() gives
   * (call it once the engine's flush has been routed). Returns the switch the pause caused, if any.
   */
  completed(at: number): ModeSwitch | null {
    const sentAt = this.sentAt;
    this.sentAt = -1;
    const change = sentAt >= 0 ? this.record(this.controller.paused(sentAt, at)) : null;
    this.releaseCut = !this.periodic ? Infinity : sentAt >= 0 ? this.cut : -Infinity;
    return change;
  }

  /** The held frames the last completed checkpoint releases, in order. */
  takeReleased(): Packet[] {
    const out = this.hold.take(this.releaseCut);
    this.counters.periodicReleased += out.length;
    return out;
  }

  /** When periodic mode's next request is due: a period after the last requested checkpoint started. */
  nextRequestAt(): number {
    return this.lastSentAt + this.options.thresholds.periodMs;
  }

  /** Hybrid's periodic judgement (the loop's scan): the switch made, if any. */
  evaluate(now: number): ModeSwitch | null {
    return this.record(this.controller.evaluate(now));
  }

  status(now: number): ProtectionStatus {
    return {
      mode: this.options.mode,
      active: this.controller.active(),
      thresholds: { ...this.options.thresholds },
      heldFrames: this.hold.frames,
      heldBytes: this.hold.bytes,
      timeInMs: this.controller.timeInModes(now),
      switches: [...this.controller.switches()],
    };
  }

  private record(change: ModeSwitch | null): ModeSwitch | null {
    if (change === null) return null;
    this.counters.modeSwitches++;
    return change;
  }
}
