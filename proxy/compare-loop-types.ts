import type { Logger } from 'pino';
import type { CompareEngine } from '../compare/engine.js';
import type { ModeSwitch, ModeThresholds, ProtectionMode } from '../compare/protection-mode.js';
import type { Decision, Side } from '../compare/types.js';
import type { FairnessCounters } from './fairness.js';
import type { HoldBounds } from './periodic-hold.js';
import type { FramingRejectReason } from './port.js';

/**
 * The drop-in compare loop's contracts (proxy/compare-loop.ts): what it calls of the engine, the notifier and
 * the statistics sink, its options, and the counters it keeps (served under `loop` in the drop-in's /stats).
 */

/** What the loop calls of the comparison engine (compare/engine.ts's CompareEngine; a scripted one in tests). */
export type CompareEngineLike = Pick<CompareEngine, 'push' | 'tick' | 'flush'>;

/** Whoever can actually take a checkpoint (Xen's notify_dev). */
export interface CheckpointNotifier {
  requestCheckpoint(): void;
}

/** Statistics sink; src/stats/metrics.ts's ColoMetrics fits. Every method is off the per-frame path or O(1). */
export interface LoopObserver {
  recordDecision(decision: Decision, now?: number): void;
  /** One released frame's hold time (ms). The loop samples: see LATENCY_SAMPLE_EVERY. */
  observeCompareLatency(ms: number): void;
  recordFramesIn(side: Side, n: number): void;
  recordMalformed(side: Side, reason: string, n?: number): void;
  recordCheckpointRequest(reason: string): void;
  /** A hybrid switch between compare and periodic (colo_mode_switches_total). */
  modeSwitch(change: ModeSwitch): void;
}

/** The protection mode (compare/protection-mode.ts) and the bound on what periodic mode holds. */
export interface LoopProtectionOptions {
  mode: ProtectionMode;
  thresholds: ModeThresholds;
  bounds: HoldBounds;
}

/**
 * Where the loop writes lines about events that can come in floods (divergences, rejected frames): the
 * drop-in gives src/rate-limited-log.ts's RateLimitedLog, which writes a few per kind and summarises the rest.
 */
export interface EventLines {
  line(level: 'info' | 'warn', kind: string, fields: object, msg: string): void;
}

/** What shutdown() did with the frames the engine held. */
export interface ShutdownFlush {
  /** Held primary frames released by the final flush and handed to outdev's socket (or its wait queue). */
  flushedFrames: number;
  /** Held secondary frames dropped by it. */
  droppedFrames: number;
}

export interface CompareLoopOptions {
  engine: CompareEngineLike;
  compareTimeoutMs: number;
  expiredScanCycleMs: number;
  /** Whether outdev frames carry the vnet_hdr_len field (each frame's own, as received). */
  vnetHdr: boolean;
  /** null: no one can checkpoint; see the rate rule below. */
  notifier: CheckpointNotifier | null;
  logger: Logger;
  /** Divergence and reject lines; every one goes to `logger` when absent (tests). */
  lines?: EventLines;
  observer?: LoopObserver;
  /** Absent: compare mode (release by comparison). Periodic and hybrid need a notifier. */
  protection?: LoopProtectionOptions;
  /** Runs after every stale-packet scan (e.g. to sample queue depths into gauges). */
  afterScan?: () => void;
  clock?: () => number;
}

export interface LoopCounters extends FairnessCounters {
  framesIn: Record<Side, number>;
  released: number;
  dropped: number;
  /** Frames the engine rejected, by side. */
  malformed: Record<Side, number>;
  /** Frames the chardev framing rejected before the engine saw them, by side and reason. */
  framing: Record<Side, Record<FramingRejectReason, number>>;
  divergences: number;
  /**
   * DO_CHECKPOINT messages sent: one per divergence unless one is already outstanding, plus periodic mode's
   * (periodicRequestsSent).
   */
  checkpointRequestsSent: number;
  /** Divergences folded into the outstanding request (the one checkpoint resolves them all). */
  checkpointRequestsCoalesced: number;
  /** Requests made with no --notify-dev (nobody to send them to): logged and counted. */
  checkpointRequestsUnanswered: number;
  /** Checkpoints completed (COLO_CHECKPOINT on notify_dev). */
  flushes: number;
  /** Flushes the loop did itself because no --notify-dev exists (after compare_timeout). */
  localFlushes: number;
  /** Times the inputs were paused because outdev's backlog was above its high-water mark. */
  backpressurePauses: number;
  /** Exceptions from the engine (a bug): the frame in hand is counted as malformed 'internal-error'. */
  internalErrors: number;
  /** Divergences found while periodic mode held the output: counted and logged, no checkpoint asked. */
  backgroundDivergences: number;
  /** DO_CHECKPOINT sent by periodic mode: every period, and once to release the hold after a switch back. */
  periodicRequestsSent: number;
  /** Primary frames periodic mode held and released at a checkpoint's completion. */
  periodicReleased: number;
  /** Times the hold passed its bound and was released before its checkpoint (unprotected), and its frames. */
  periodicBoundReleases: number;
  periodicBoundReleased: number;
  /** Hybrid switches between compare and periodic (each is logged). */
  modeSwitches: number;
}

function zeroFraming(): Record<FramingRejectReason, number> {
  return { 'zero-length': 0, oversized: 0, 'vnet-length': 0, truncated: 0 };
}

/** Every counter at zero. */
export function zeroLoopCounters(): LoopCounters {
  return {
    framesIn: { primary: 0, secondary: 0 },
    released: 0,
    dropped: 0,
    malformed: { primary: 0, secondary: 0 },
    framing: { primary: zeroFraming(), secondary: zeroFraming() },
    divergences: 0,
    checkpointRequestsSent: 0,
    checkpointRequestsCoalesced: 0,
    checkpointRequestsUnanswered: 0,
    flushes: 0,
    localFlushes: 0,
    backpressurePauses: 0,
    fairnessHolds: 0,
    fairnessForgiven: 0,
    internalErrors: 0,
    backgroundDivergences: 0,
    periodicRequestsSent: 0,
    periodicReleased: 0,
    periodicBoundReleases: 0,
    periodicBoundReleased: 0,
    modeSwitches: 0,
  };
}
