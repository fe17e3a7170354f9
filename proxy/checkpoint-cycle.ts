/**
 * When the inline proxy checkpoints, and how each checkpoint ends: requests are coalesced while one runs,
 * CHKPOINT_TIMER (compare) or the period P (periodic) starts the next, and the protection mode controller
 * (compare/protection-mode.ts) decides in hybrid which of the two is in force. The proxy (proxy/inline.ts)
 * does the holding and releasing; this file only says when.
 */
import {
  defaultModeThresholds,
  ModeController,
  type ModeSwitch,
  type ModeThresholds,
  type ProtectionMode,
} from '../compare/protection-mode.js';
import type {
  InlineCheckpointEngine,
  InlineCheckpointOutcome,
  InlineCounters,
  ProtectionStatus,
} from './inline-types.js';

export interface ProtectionOptions {
  mode: ProtectionMode;
  thresholds: ModeThresholds;
}

/** Switches the controller keeps for /stats' lastSwitch; the rest are only counted. */
const KEEP_SWITCHES = 16;

export const defaultProtection: ProtectionOptions = { mode: 'compare', thresholds: defaultModeThresholds };

/** Why a checkpoint was asked for: a divergence counts toward hybrid's crowding bound, the others do not. */
export type RequestKind = 'divergence' | 'timer' | 'other';

/** What the cycle asks of the proxy. */
export interface CycleHost {
  /** True while a checkpoint can run: the pair is protected and the proxy is not stopping. */
  canCheckpoint(): boolean;
  /** The pause starts: hold the primary's output and the client's input. `periodic`: the epoch ends here. */
  hold(now: number, periodic: boolean): void;
  checkpointStarted(reason: string): void;
  /** Asks for a checkpoint as anyone does (counted and reported as a request); it comes back to request(). */
  requestCheckpoint(reason: string, kind: RequestKind): void;
  /**
   * LOADED, or a failure that kept the secondary. `releaseAll`: every held frame goes out (compare mode);
   * otherwise only the epoch that ended at hold() (periodic mode).
   */
  finish(reason: string, ok: boolean, releaseAll: boolean): void;
  /** A checkpoint failed and took the secondary with it. */
  secondaryLost(reason: string): void;
  modeSwitched(change: ModeSwitch): void;
}

interface Pending {
  reason: string;
  kind: RequestKind;
}

export class CheckpointCycle {
  readonly controller: ModeController;
  private running = false;
  private pending: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** When the running checkpoint's pause began (its hold), or null before it. */
  private heldAt: number | null = null;
  private startedAt = 0;
  private lastStartAt = -Infinity;
  /** The running checkpoint was started in periodic mode. */
  private epochPeriodic = false;

  constructor(
    private readonly engine: InlineCheckpointEngine | null,
    private readonly host: CycleHost,
    private readonly counters: InlineCounters,
    private readonly options: {
      checkpointTimerMs: number;
      holdFromPrimaryStop: boolean;
      protection: ProtectionOptions;
    },
    private readonly clock: () => number,
  ) {
    if (engine === null && options.protection.mode !== 'compare') {
      throw new RangeError(`protection.mode: ${options.protection.mode} needs a checkpoint engine`);
    }
    const { mode, thresholds } = options.protection;
    this.controller = new ModeController(mode, thresholds, clock(), KEEP_SWITCHES);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Periodic mode is in force: all primary output waits for the next checkpoint. */
  get periodic(): boolean {
    return this.controller.active() === 'periodic';
  }

  request(reason: string, kind: RequestKind): void {
    if (!this.host.canCheckpoint() || this.stopped) return;
    if (!this.engine) {
      // Nothing can checkpoint: flush at once so no primary frame is held forever (counted as a request).
      this.host.finish(reason, true, true);
      return;
    }
    if (this.running) {
      if (this.pending === null) this.pending = { reason, kind };
      else this.counters.coalesced++;
      return;
    }
    this.start(reason, kind);
  }

  /** The checkpoint engine is about to stop the primary VM: the pause starts now. */
  primaryStopping(): void {
    if (this.running && this.heldAt === null) this.holdNow();
  }

  /** Judges hybrid's thresholds (the proxy calls this on its stale-packet scan). */
  tick(now: number): void {
    this.switched(this.controller.evaluate(now));
  }

  /** A divergence the comparison found while periodic mode held the output. */
  backgroundDivergence(now: number): void {
    this.counters.backgroundDivergences++;
    this.controller.backgroundDivergence(now);
  }

  status(now: number): ProtectionStatus {
    const controller = this.controller;
    const switches = controller.switches();
    return {
      mode: controller.mode,
      active: controller.active(),
      switches: controller.switchCount(),
      lastSwitch: switches.at(-1) ?? null,
      timeInMs: controller.timeInModes(now),
      backgroundDivergences: this.counters.backgroundDivergences,
    };
  }

  /** The secondary is gone (or the primary): nothing queued will run. */
  dropPending(): void {
    this.pending = null;
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  /** Starts the next timed checkpoint: CHKPOINT_TIMER after this one, or P after the last start (periodic). */
  arm(): void {
    this.disarm();
    if (this.stopped || !this.engine || !this.host.canCheckpoint() || this.running) return;
    const periodic = this.periodic;
    if (!periodic && this.options.checkpointTimerMs <= 0) return;
    const delay = periodic
      ? Math.max(0, this.options.protection.thresholds.periodMs - (this.clock() - this.lastStartAt))
      : this.options.checkpointTimerMs;
    this.timer = setTimeout(() => this.host.requestCheckpoint(periodic ? 'periodic' : 'timer', 'timer'), delay);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private start(reason: string, kind: RequestKind): void {
    const now = this.clock();
    this.running = true;
    this.heldAt = null;
    this.startedAt = now;
    this.lastStartAt = now;
    this.disarm();
    if (kind === 'divergence') this.switched(this.controller.divergenceCheckpoint(now));
    this.epochPeriodic = this.periodic;
    if (!this.options.holdFromPrimaryStop) this.holdNow();
    this.host.checkpointStarted(reason);
    void this.engine!.checkpoint(reason).then(
      (outcome) => this.outcome(reason, outcome),
      () => this.outcome(reason, { ok: false, secondaryLost: true }),
    );
  }

  private holdNow(): void {
    this.heldAt = this.clock();
    this.host.hold(this.heldAt, this.epochPeriodic);
  }

  private outcome(reason: string, outcome: InlineCheckpointOutcome): void {
    const now = this.clock();
    // Still running while it ends: a switch judged here needs no checkpoint of its own, and a request made by a
    // listener of the finish queues behind it.
    this.switched(this.controller.paused(this.heldAt ?? this.startedAt, now));
    // A periodic epoch releases only its own frames; after a switch back to compare everything held goes.
    const releaseAll = !(this.epochPeriodic && this.periodic);
    if (outcome.ok) {
      this.host.finish(reason, true, releaseAll);
    } else {
      this.counters.checkpointFailures++;
      if (outcome.secondaryLost) this.host.secondaryLost(`checkpoint failed (${reason}): secondary lost`);
      else this.host.finish(reason, false, releaseAll);
    }
    this.running = false;
    const next = this.pending;
    this.pending = null;
    if (next !== null && this.host.canCheckpoint() && !this.stopped) this.start(next.reason, next.kind);
    else this.arm();
  }

  private switched(change: ModeSwitch | null): void {
    if (change === null) return;
    this.counters.modeSwitches++;
    this.host.modeSwitched(change);
    if (change.to === 'periodic') {
      if (!this.running) this.arm();
    } else if (!this.running) {
      // Output held in periodic mode waits for a checkpoint; the next one releases all of it.
      this.host.requestCheckpoint('mode-switch', 'other');
    }
  }
}
