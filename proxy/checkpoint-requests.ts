import type { Divergence } from '../compare/types.js';
import type { CheckpointNotifier, EventLines, LoopCounters } from './compare-loop-types.js';

/**
 * The drop-in's checkpoint requests (docs/compare.md, "Checkpoint requests: the rate rule"). The compare loop
 * (proxy/compare-loop.ts) owns it and is told whether a DO_CHECKPOINT went out.
 *
 * Rate rule: each divergence the engine reports is a request. A DO_CHECKPOINT is sent for it unless one is
 * already outstanding (sent, and no COLO_CHECKPOINT since): one checkpoint resolves every diverged
 * connection, so later divergences are coalesced into it. The engine itself reports a diverged connection
 * once and then holds it until flush (QEMU re-notifies on every later packet of that connection and on
 * every timer scan). Periodic mode's requests follow the same rule: none while one is outstanding.
 *
 * Without a notifier nobody can checkpoint: each request is logged and counted, and compare_timeout after
 * the first unanswered one the loop flushes locally (releases the held primary frames, drops the
 * secondary's) so clients are not stalled forever; those connections ran unprotected until then.
 */
export class CheckpointRequests {
  private pending = false;
  private localFlushAt = 0;

  constructor(
    private readonly notifier: CheckpointNotifier | null,
    private readonly counters: LoopCounters,
    private readonly lines: EventLines,
    private readonly compareTimeoutMs: number,
  ) {}

  /** True between a DO_CHECKPOINT and the COLO_CHECKPOINT that answers it. */
  get outstanding(): boolean {
    return this.pending;
  }

  /** Whether a notifier exists: without one only a local flush releases what the engine holds. */
  get answerable(): boolean {
    return this.notifier !== null;
  }

  /** A divergence asks for a checkpoint: true when a DO_CHECKPOINT went out for it. */
  divergence(d: Divergence, now: number): boolean {
    const fields = { reason: d.reason, connection: d.connection, offset: d.offset, detail: d.detail };
    if (this.notifier === null) {
      this.counters.checkpointRequestsUnanswered++;
      if (this.localFlushAt === 0) this.localFlushAt = now + this.compareTimeoutMs;
      this.lines.line(
        'warn',
        'divergence',
        { ...fields, localFlushInMs: Math.max(0, this.localFlushAt - now) },
        'checkpoint requested but there is no --notify-dev: held frames are released by a local flush',
      );
      return false;
    }
    if (this.pending) {
      this.counters.checkpointRequestsCoalesced++;
      this.lines.line('info', 'divergence', fields, 'divergence: checkpoint already requested, coalesced');
      return false;
    }
    this.lines.line('info', 'divergence', fields, 'divergence: checkpoint requested');
    this.send(this.notifier);
    return true;
  }

  /** Periodic mode asks (its period, or frames held after a switch back): true when a DO_CHECKPOINT went out. */
  periodic(): boolean {
    if (this.notifier === null || this.pending) return false;
    this.counters.periodicRequestsSent++;
    this.send(this.notifier);
    return true;
  }

  /** COLO_CHECKPOINT arrived. */
  answered(): void {
    this.pending = false;
    this.localFlushAt = 0;
  }

  /** Without a notifier: true (once) when the local flush is due at `now`. */
  localFlushDue(now: number): boolean {
    if (this.localFlushAt === 0 || now < this.localFlushAt) return false;
    this.localFlushAt = 0;
    this.counters.localFlushes++;
    return true;
  }

  private send(notifier: CheckpointNotifier): void {
    this.pending = true;
    this.counters.checkpointRequestsSent++;
    notifier.requestCheckpoint();
  }
}
