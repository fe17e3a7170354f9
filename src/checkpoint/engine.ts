import type { CheckpointError, LossReason } from './errors.js';

/**
 * The contract the proxy depends on. The built-in implementation is the Coordinator (coordinator.ts);
 * other engines (Xen, a fake in tests) implement the same surface.
 */

/** Milliseconds per phase as the primary sees it; null where the checkpoint never got there. */
export interface PhaseDurations {
  /** NEW sent until both VMs are suspended (the secondary's SUSPENDED, then the local suspend). */
  suspend: number | null;
  save: number | null;
  /** SEND and the state written until the secondary's RECEIVED. */
  transfer: number | null;
  /** RECEIVED until LOADED. */
  load: number | null;
  /** LOADED until the primary runs again (after the caller's flush). */
  resume: number | null;
  total: number | null;
}

export type CheckpointPhase = keyof PhaseDurations;

export function emptyDurations(): PhaseDurations {
  return { suspend: null, save: null, transfer: null, load: null, resume: null, total: null };
}

interface OutcomeBase {
  /** The first reason asked for; `reasons` holds every request this checkpoint answered (coalesced). */
  reason: string;
  reasons: string[];
  durations: PhaseDurations;
}

export type CheckpointOutcome =
  | (OutcomeBase & { ok: true; stateBytes: number })
  | (OutcomeBase & {
      ok: false;
      error: CheckpointError;
      /** The secondary was dropped: the caller goes solo (flushes everything held) until 'ready' again. */
      secondaryLost: boolean;
    });

/**
 * A finished checkpoint in one word, as metrics (colo_checkpoints_total's `outcome` label) and the event log
 * name it: ok; aborted (the primary's own driver failed, the secondary stayed: still protected); failed
 * (the secondary was lost).
 */
export type CheckpointOutcomeLabel = 'ok' | 'aborted' | 'failed';

export function outcomeLabel(outcome: CheckpointOutcome): CheckpointOutcomeLabel {
  if (outcome.ok) return 'ok';
  return outcome.secondaryLost ? 'failed' : 'aborted';
}

/** Emitted after every finished checkpoint (success or failure), with every phase measured. */
export type CheckpointReport = CheckpointOutcome & { seeding: boolean };

export interface LossEvent {
  reason: LossReason;
  error: CheckpointError;
  /** Whether the pair was protected when it happened (false: lost during the initial sync). */
  wasProtected: boolean;
}

export interface ReadyEvent {
  peer: string;
  /** Whether the peer speaks the extensions (hello, heartbeat, error, abort) or only the seed values. */
  extensions: boolean;
}

export interface EngineEvents {
  /** The secondary holds the primary's state: the pair is protected from now on. */
  ready: [event: ReadyEvent];
  'secondary-lost': [event: LossEvent];
  'primary-lost': [event: LossEvent];
  checkpoint: [report: CheckpointReport];
}

export interface CheckpointEngine {
  /**
   * Resolves at LOADED (the caller flushes held output then; the primary resumes only after the caller's
   * synchronous continuation ran) or with the failure. Never rejects.
   */
  checkpoint(reason: string): Promise<CheckpointOutcome>;
  /** True between 'ready' and the next loss. */
  readonly isProtected: boolean;
  on<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  off<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): this;
  close(): Promise<void>;
}
