/**
 * The inline proxy's data plane: client frames are mirrored to both VMs; the VMs' output is compared; the
 * primary's is released through the output gate while they agree; a divergence, the stale-packet scan, a
 * queue overflow or CHKPOINT_TIMER asks the checkpoint engine for a checkpoint, during which the gate and
 * the client's ingress are held until LOADED.
 *
 *   client  --sinks.client-->   mirror --> primary port
 *                                      \-> rewriter (ack) --> secondary port
 *   primary   --sinks.primary-->   mirror -> rewriter (ISN) --> engine.push(primary)   \
 *   secondary --sinks.secondary--> mirror -> rewriter (seq) --> engine.push(secondary)
 *   client frames the rewriter held for an ISN: returned by those calls --> mirror --> secondary port
 *   engine decisions --release--> gate --> client port;  --divergence--> requestCheckpoint()
 *
 * Modes: unprotected (before the secondary's READY) and solo (secondary lost): the primary's output passes
 * straight through and the secondary gets nothing; protected: the above; failover (primary lost): the
 * secondary's output, already in the primary's sequence space, goes to the client and the primary gets
 * nothing. The proxy owns CHKPOINT_TIMER, so the engine must be built without its own timer
 * (Coordinator option checkpointTimerMs: null): a checkpoint the proxy did not start would not be gated.
 */
import { EventEmitter } from 'node:events';
import { CompareEngine, type CompareOptions, type Decision } from '../compare/engine.js';
import type { Divergence, Side } from '../compare/types.js';
import { dissect, dissectFrame } from '../compare/wire/dissect.js';
import { FrameInfo, type MalformedReason } from '../compare/wire/frame-info.js';
import { OutputGate } from './gate.js';
import { Mirror } from './mirror.js';
import type { FramePort, FramingRejectReason, FrameSink } from './port.js';
import { SeqRewriter, type RewriterOptions } from './rewriter.js';

export type { FramePort } from './port.js';

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
}

export class InlineProxy extends EventEmitter<InlineProxyEvents> {
  readonly counters: InlineCounters = {
    framesIn: { client: 0, primary: 0, secondary: 0 },
    passedThrough: 0,
    released: 0,
    secondaryDropped: 0,
    secondaryUnprotected: 0,
    secondaryBeforeFlush: 0,
    primaryAfterFailover: 0,
    failoverReleased: 0,
    malformed: 0,
    rejected: 0,
    checkpointRequests: 0,
    coalesced: 0,
    checkpoints: 0,
    checkpointFailures: 0,
  };
  readonly sinks: { client: FrameSink; primary: FrameSink; secondary: FrameSink };
  readonly engine: CompareEngine;
  readonly rewriter: SeqRewriter;
  private readonly options: InlineOptions;
  private readonly info = new FrameInfo();
  private ports: { client: FramePort; primary: FramePort; secondary: FramePort } | null = null;
  private secondaryTime: FrameClock | null = null;
  /** secondaryTime.now() at the last successful checkpoint's flush. */
  private flushedAt = -Infinity;
  private gate: OutputGate | null = null;
  private mirror: Mirror | null = null;
  private currentMode: Mode = 'unprotected';
  private checkpointRunning = false;
  private pendingReason: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private checkpointTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly checkpoints: InlineCheckpointEngine | null,
    options: Partial<InlineOptions> = {},
    private readonly clock: () => number = () => performance.now(),
  ) {
    super();
    this.options = { ...defaultInlineOptions, ...options };
    // The rewriter puts the secondary's seqs into the primary's space, so after a checkpoint the secondary is
    // placed by sequence number: a lab guest (kernel not checkpointed) may lag or lead there, and a real VM's
    // kernel state is only approximately the primary's.
    this.engine = new CompareEngine({ tcpAlignAfterFlush: 'sequence', ...this.options.compare });
    this.rewriter = new SeqRewriter(this.options.rewriter);
    this.sinks = {
      client: this.sinkFor((frame) => this.onClientFrame(frame)),
      primary: this.sinkFor((frame, start) => this.onPrimaryFrame(frame, start)),
      secondary: this.sinkFor((frame, start) => this.onSecondaryFrame(frame, start)),
    };
    if (checkpoints) {
      if (checkpoints.isProtected) this.currentMode = 'protected';
      checkpoints.on('ready', () => this.onProtected());
      checkpoints.on('secondary-lost', (event) => this.goSolo(event.reason));
      checkpoints.on('primary-lost', (event) => this.primaryLost(event.reason));
    } else {
      // Compare-only (no engine): protected from the start; checkpoint requests are only counted and emitted.
      this.currentMode = 'protected';
    }
  }

  get mode(): Mode {
    return this.currentMode;
  }

  /**
   * `secondaryTime`, when the secondary's port knows when the kernel received each frame: that time for the frame
   * being handled and the same clock now. A checkpoint's flush then also drops the frames the replaced VM sent
   * that were still queued in the capture ring when LOADED arrived.
   */
  attach(ports: { client: FramePort; primary: FramePort; secondary: FramePort }, secondaryTime?: FrameClock): void {
    this.ports = ports;
    this.secondaryTime = secondaryTime ?? null;
    this.gate = new OutputGate(ports.client, this.options.maxHeldFrames, (held) =>
      this.emit('gate-over-bound', { held, bound: this.options.maxHeldFrames }),
    );
    this.mirror = new Mirror(ports.primary, ports.secondary, this.rewriter, this.options.maxHeldIngress);
    this.mirror.targets = this.mirrorTargets();
  }

  start(): void {
    const scanMs = this.engine.options.expiredScanCycleMs;
    this.timers.push(setInterval(() => this.apply(this.engine.tick(this.clock())), scanMs));
    this.timers.push(setInterval(() => this.rewriter.sweep(this.clock()), this.options.rewriterSweepMs));
    for (const timer of this.timers) timer.unref();
    this.armCheckpointTimer();
  }

  async stop(): Promise<void> {
    this.shutdown();
  }

  /**
   * Nothing the primary produced stays behind: every held frame (engine and gate) goes to the client, and
   * primary frames that arrive later pass straight through. Call before the ports close; stop() does too.
   */
  shutdown(): StopFlush {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    const gate = this.gate?.counters;
    const failuresBefore = gate?.sendFailures ?? 0;
    const sentBefore = (gate?.passed ?? 0) + (gate?.flushed ?? 0);
    if (this.currentMode === 'protected') this.apply(this.engine.flush(this.clock()));
    this.gate?.release();
    return {
      flushedFrames: (gate?.passed ?? 0) + (gate?.flushed ?? 0) - sentBefore,
      sendFailures: (gate?.sendFailures ?? 0) - failuresBefore,
    };
  }

  requestCheckpoint(reason: string): void {
    this.counters.checkpointRequests++;
    this.emit('checkpoint-request', { reason });
    if (this.currentMode !== 'protected' || this.stopped) return;
    if (!this.checkpoints) {
      // Nothing can checkpoint: flush at once so no primary frame is held forever (counted as a request).
      this.finishCheckpoint(reason, true);
      return;
    }
    if (this.checkpointRunning) {
      if (this.pendingReason === null) this.pendingReason = reason;
      else this.counters.coalesced++;
      return;
    }
    this.startCheckpoint(reason);
  }

  /** The primary is gone: the secondary's output (already in the primary's sequence space) goes to the client. */
  primaryLost(reason: string): void {
    if (this.currentMode === 'failover') return;
    if (this.currentMode === 'protected') this.apply(this.engine.flush(this.clock()));
    this.gate?.release();
    this.setMode('failover', reason);
    this.rewriter.primaryLost();
    this.takeReleasedSecondary(this.clock());
    this.mirror?.release(this.clock());
  }

  status(): object {
    return {
      mode: this.currentMode,
      checkpointRunning: this.checkpointRunning,
      counters: this.counters,
      gate: this.gate
        ? { ...this.gate.counters, heldFrames: this.gate.heldFrames, heldBytes: this.gate.heldBytes }
        : null,
      mirror: this.mirror ? { ...this.mirror.counters, heldFrames: this.mirror.heldFrames } : null,
      rewriter: { ...this.rewriter.counters, connections: this.rewriter.size },
      engine: this.engine.stats(),
    };
  }

  private sinkFor(onFrame: (frame: Buffer, start: number) => void): FrameSink {
    return {
      onFrame,
      onReject: (reason: FramingRejectReason) => {
        this.counters.rejected++;
        this.emit('rejected', { reason });
      },
    };
  }

  private onClientFrame(frame: Buffer): void {
    this.counters.framesIn.client++;
    this.mirror?.onClientFrame(frame, dissectFrame(frame, this.info), this.clock());
  }

  private onPrimaryFrame(frame: Buffer, start: number): void {
    this.counters.framesIn.primary++;
    switch (this.currentMode) {
      case 'protected': {
        if (this.stopped) {
          // Shutting down: the held frames were flushed, and nothing new is held that nobody would flush.
          this.counters.passedThrough++;
          this.gate?.pass(frame, start);
          return;
        }
        const now = this.clock();
        if (dissect(frame, start, frame.length, this.info) === null) this.mirror?.fromPrimary(this.info, now);
        this.apply(this.engine.push('primary', frame, start, now));
        // A secondary SYN-ACK that came first waited for this one's ISN: now it can be placed and compared.
        this.takeReleasedSecondary(now);
        return;
      }
      case 'failover':
        this.counters.primaryAfterFailover++;
        return;
      default:
        this.counters.passedThrough++;
        this.gate?.pass(frame, start);
    }
  }

  private onSecondaryFrame(frame: Buffer, start: number): void {
    this.counters.framesIn.secondary++;
    const mode = this.currentMode;
    if (mode === 'unprotected' || mode === 'solo') {
      this.counters.secondaryUnprotected++;
      return;
    }
    if (this.secondaryTime !== null && this.secondaryTime.frame() < this.flushedAt) {
      this.counters.secondaryBeforeFlush++;
      return;
    }
    const now = this.clock();
    if (dissect(frame, start, frame.length, this.info) === null) {
      this.mirror?.fromSecondary(frame, this.info, now);
      // Only this frame's own fromSecondary call says whether the rewriter kept it (a malformed frame makes none).
      const held = this.rewriter.secondaryHeld;
      // The offset can be learned here too (the secondary's SYN came after its other frames): those go first.
      this.takeReleasedSecondary(now);
      if (held) return;
    }
    if (mode === 'failover') {
      this.counters.failoverReleased++;
      this.gate?.pass(frame, start);
      return;
    }
    this.apply(this.engine.push('secondary', frame, start, now));
  }

  private apply(decision: Decision): void {
    const gate = this.gate;
    for (const packet of decision.release) {
      this.counters.released++;
      gate?.pass(packet.frame, packet.start);
    }
    this.counters.secondaryDropped += decision.drop.length;
    for (const bad of decision.malformed) {
      this.counters.malformed++;
      this.emit('malformed', { side: bad.side, reason: bad.reason });
    }
    // Copy out before emitting: listeners may call back into the engine, which reuses the Decision.
    const divergences: Divergence[] = decision.divergences.length === 0 ? [] : [...decision.divergences];
    for (const divergence of divergences) {
      this.emit('divergence', divergence);
      this.requestCheckpoint(divergence.reason);
    }
  }

  /**
   * The secondary frames the rewriter held for an offset and now lets go: to the client after failover,
   * otherwise to the comparison.
   */
  private takeReleasedSecondary(now: number): void {
    const waiting = this.rewriter.releasedSecondary;
    for (let frame = waiting.shift(); frame !== undefined; frame = waiting.shift()) {
      if (this.currentMode === 'failover') {
        this.counters.failoverReleased++;
        this.gate?.pass(frame, 0);
      } else this.apply(this.engine.push('secondary', frame, 0, now));
    }
  }

  /** The checkpoint engine is about to stop the primary VM: from now until LOADED its output is held. */
  primaryStopping(): void {
    if (this.checkpointRunning) this.hold();
  }

  private hold(): void {
    this.gate?.hold();
    this.mirror?.hold();
  }

  private startCheckpoint(reason: string): void {
    this.checkpointRunning = true;
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    if (!this.options.holdFromPrimaryStop) this.hold();
    this.emit('checkpoint-start', { reason });
    void this.checkpoints!.checkpoint(reason).then(
      (outcome) => this.onCheckpointOutcome(reason, outcome),
      () => this.onCheckpointOutcome(reason, { ok: false, secondaryLost: true }),
    );
  }

  private onCheckpointOutcome(reason: string, outcome: InlineCheckpointOutcome): void {
    this.checkpointRunning = false;
    if (outcome.ok) {
      this.finishCheckpoint(reason, true);
    } else {
      this.counters.checkpointFailures++;
      if (outcome.secondaryLost) this.goSolo(`checkpoint failed (${reason}): secondary lost`);
      else this.finishCheckpoint(reason, false);
    }
    if (this.pendingReason !== null && this.currentMode === 'protected') {
      const next = this.pendingReason;
      this.pendingReason = null;
      this.startCheckpoint(next);
    } else {
      this.pendingReason = null;
      this.armCheckpointTimer();
    }
  }

  /**
   * LOADED (or a failed checkpoint that kept the secondary): release every held primary frame in order,
   * then the gate's, then deliver the held client input to both VMs.
   */
  private finishCheckpoint(reason: string, ok: boolean): void {
    const now = this.clock();
    if (ok && this.secondaryTime !== null) this.flushedAt = this.secondaryTime.now();
    this.apply(this.engine.flush(now));
    const flushedFrames = this.gate?.release() ?? 0;
    if (ok) {
      this.counters.checkpoints++;
      this.rewriter.onCheckpoint(this.options.resetOffsetsOnCheckpoint);
    }
    const deliveredIngress = this.mirror?.release(now) ?? 0;
    const done: CheckpointDone = { reason, ok, loadedAt: now, flushedFrames, deliveredIngress };
    this.emit('checkpoint', done);
  }

  private goSolo(reason: string): void {
    // Lost before it was ever protected (the initial seed failed): still unprotected, nothing held.
    if (this.currentMode !== 'protected') return;
    if (this.currentMode === 'protected') this.apply(this.engine.flush(this.clock()));
    this.gate?.release();
    this.pendingReason = null;
    this.setMode('solo', reason);
    this.mirror?.release(this.clock());
  }

  private onProtected(): void {
    if (this.currentMode === 'protected' || this.currentMode === 'failover') return;
    // The secondary was (re-)seeded with a full copy: it is a clone, so offsets restart from 0, and the engine,
    // which saw nothing while the primary passed through, restarts each connection at its next segments.
    this.rewriter.onCheckpoint(true);
    this.apply(this.engine.flushForgettingPositions(this.clock()));
    this.setMode('protected', 'secondary ready');
    this.armCheckpointTimer();
  }

  private setMode(mode: Mode, reason: string): void {
    this.currentMode = mode;
    if (this.mirror) this.mirror.targets = this.mirrorTargets();
    this.emit('mode', { mode, reason });
  }

  private mirrorTargets(): 'primary' | 'both' | 'secondary' {
    if (this.currentMode === 'protected') return 'both';
    return this.currentMode === 'failover' ? 'secondary' : 'primary';
  }

  private armCheckpointTimer(): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    if (this.stopped || this.options.checkpointTimerMs <= 0 || this.currentMode !== 'protected' || !this.checkpoints) {
      return;
    }
    this.checkpointTimer = setTimeout(() => this.requestCheckpoint('timer'), this.options.checkpointTimerMs);
    this.checkpointTimer.unref();
  }
}
