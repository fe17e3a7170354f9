/**
 * The inline proxy's contracts (proxy/inline.ts): its options, the checkpoint engine it drives, its counters
 * and the events it emits.
 */
import type { ActiveMode, ModeSwitch, ProtectionMode } from '../compare/protection-mode.js';
import type { Divergence, Side } from '../compare/types.js';
import type { CompareOptions } from '../compare/engine.js';
import type { MalformedReason } from '../compare/wire/frame-info.js';
import type { FramingRejectReason } from './port.js';
import { defaultProtection, type ProtectionOptions } from './checkpoint-cycle.js';
import type { RewriterOptions } from './rewriter.js';

/** The pair's protection mode (described above). The one declaration: metrics and the event log import it. */
export type Mode = 'unprotected' | 'protected' | 'solo' | 'failover';

/** What the proxy needs to know of a finished checkpoint (src/checkpoint/engine.ts's CheckpointOutcome fits). */
export interface InlineCheckpointOutcome {
  readonly ok: boolean;
  /** On failure: the secondary was dropped, so the proxy goes solo. */
  readonly secondaryLost?: boolean;
}

/** A lost peer, as the proxy reads it (src/checkpoint/engine.ts's LossEvent fits). */
export interface InlineLossEvent {
  readonly reason: string;
}

/**
 * The subset of the checkpoint engine (src/checkpoint/engine.ts: the Coordinator fits as it is) the data plane
 * needs. One `on` per event, so the compiler checks each listener against the engine's own event types.
 */
export interface InlineCheckpointEngine {
  /** Resolves at LOADED or with the failure; a rejection counts as a failure that lost the secondary. */
  checkpoint(reason: string): Promise<InlineCheckpointOutcome>;
  readonly isProtected: boolean;
  /** The secondary holds the primary's state: protected from now on. */
  on(event: 'ready', listener: () => void): unknown;
  on(event: 'secondary-lost', listener: (event: InlineLossEvent) => void): unknown;
  on(event: 'primary-lost', listener: (event: InlineLossEvent) => void): unknown;
}

export interface InlineOptions {
  compare: Partial<CompareOptions>;
  rewriter: Partial<RewriterOptions>;
  /** True for real VMs (the secondary becomes a clone); false for a lab guest whose kernel is not checkpointed. */
  resetOffsetsOnCheckpoint: boolean;
  maxHeldFrames: number;
  maxHeldIngress: number;
  /** CHKPOINT_TIMER (ms); 0 turns it off. */
  checkpointTimerMs: number;
  rewriterSweepMs: number;
  /**
   * Hold the primary's output and the client's input from when the engine starts stopping the primary
   * (primaryStopping()) instead of from the checkpoint's start: while the secondary prepares, comparison goes on.
   */
  holdFromPrimaryStop: boolean;
  /** compare (COLO), periodic (buffer all output, checkpoint every P ms) or hybrid (docs/inline.md). */
  protection: ProtectionOptions;
}

export const defaultInlineOptions: InlineOptions = {
  compare: {},
  rewriter: {},
  resetOffsetsOnCheckpoint: true,
  maxHeldFrames: 65536,
  maxHeldIngress: 65536,
  checkpointTimerMs: 10_000,
  rewriterSweepMs: 1000,
  holdFromPrimaryStop: false,
  protection: defaultProtection,
};

/** A port's receive clock: when the kernel received the frame being handled, and now, in one unit. */
export interface FrameClock {
  frame(): number;
  now(): number;
}

export interface InlineCounters {
  framesIn: Record<'client' | Side, number>;
  /** Primary frames sent to the client without comparison (unprotected or solo). */
  passedThrough: number;
  released: number;
  secondaryDropped: number;
  /** Secondary frames discarded because the pair was not protected (unprotected or solo). */
  secondaryUnprotected: number;
  /**
   * Secondary frames the kernel received before the last LOADED but handed to the proxy after its flush: the
   * replaced VM sent them, so they belong before the flush and are dropped with it.
   */
  secondaryBeforeFlush: number;
  /** Primary frames that arrived after failover. */
  primaryAfterFailover: number;
  failoverReleased: number;
  malformed: number;
  rejected: number;
  checkpointRequests: number;
  /** Requests that found a checkpoint running and were folded into the next one. */
  coalesced: number;
  checkpoints: number;
  checkpointFailures: number;
  /** Hybrid switches between compare and periodic mode. */
  modeSwitches: number;
  /** Divergences the comparison found while periodic mode held the output (no checkpoint asked for them). */
  backgroundDivergences: number;
  /** Primary frames a pass-through rule released past a closed gate (periodic mode or a checkpoint's pause). */
  passedByRuleWhileHeld: number;
}

export interface CheckpointDone {
  reason: string;
  ok: boolean;
  /** The proxy's clock when the outcome arrived (LOADED, or the failure), before anything was flushed. */
  loadedAt: number;
  /** Held primary frames sent to the client at LOADED (engine flush and gate). */
  flushedFrames: number;
  /** Client frames held during the checkpoint and then delivered to the VMs. */
  deliveredIngress: number;
}

/** What shutdown() did with the primary frames held when it was called (engine and gate). */
export interface StopFlush {
  /** Held primary frames sent to the client. */
  flushedFrames: number;
  /** Of those, the ones the client port refused (counted in the gate's sendFailures too). */
  sendFailures: number;
}

/** The protection mode as `/stats` shows it (InlineProxy.protection()). */
export interface ProtectionStatus {
  mode: ProtectionMode;
  /** The mode in force: hybrid is always one of these two. */
  active: ActiveMode;
  switches: number;
  lastSwitch: ModeSwitch | null;
  /** Time spent in each mode since the proxy started (ms). */
  timeInMs: Record<ActiveMode, number>;
  backgroundDivergences: number;
}

/** What the proxy emits; every listener is checked against these payloads. */
export interface InlineProxyEvents {
  mode: [change: { mode: Mode; reason: string }];
  /** Emitted before the checkpoint it asks for; the record is the listener's to keep. */
  divergence: [divergence: Divergence];
  malformed: [frame: { side: Side; reason: MalformedReason }];
  /** A frame the port's framing refused before the proxy saw it. */
  rejected: [frame: { reason: FramingRejectReason }];
  'checkpoint-request': [request: { reason: string }];
  'checkpoint-start': [start: { reason: string }];
  checkpoint: [done: CheckpointDone];
  /** The output gate holds more frames than maxHeldFrames during a checkpoint. */
  'gate-over-bound': [bound: { held: number; bound: number }];
  /** Hybrid switched between compare and periodic mode. */
  'protection-mode': [change: ModeSwitch];
}
