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
 * Protection modes (proxy/checkpoint-cycle.ts): compare, the above; periodic, all primary output held and
 * released by the next checkpoint, one every P ms; hybrid, switching between the two.
 *
 * Pair modes: unprotected (before the secondary's READY) and solo (secondary lost): the primary's output passes
 * straight through and the secondary gets nothing; protected: the above; failover (primary lost): the
 * secondary's output, already in the primary's sequence space, goes to the client and the primary gets
 * nothing. The proxy owns CHKPOINT_TIMER, so the engine must be built without its own timer
 * (Coordinator option checkpointTimerMs: null): a checkpoint the proxy did not start would not be gated.
 */
import { EventEmitter } from 'node:events';
import { CompareEngine, type Decision } from '../compare/engine.js';
import type { Divergence } from '../compare/types.js';
import { dissect, dissectFrame } from '../compare/wire/dissect.js';
import { FrameInfo } from '../compare/wire/frame-info.js';
import { CheckpointCycle, type CycleHost, type RequestKind } from './checkpoint-cycle.js';
import { OutputGate } from './gate.js';
import {
  defaultInlineOptions,
  type CheckpointDone,
  type FrameClock,
  type InlineCheckpointEngine,
  type InlineCounters,
  type InlineOptions,
  type InlineProxyEvents,
  type Mode,
  type ProtectionStatus,
  type StopFlush,
} from './inline-types.js';
import { Mirror } from './mirror.js';
import type { FramePort, FramingRejectReason, FrameSink } from './port.js';
import { SeqRewriter } from './rewriter.js';

export type { FramePort } from './port.js';
export * from './inline-types.js';

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
    modeSwitches: 0,
    backgroundDivergences: 0,
    passedByRuleWhileHeld: 0,
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
  private readonly cycle: CheckpointCycle;
  private timers: NodeJS.Timeout[] = [];
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
    this.cycle = new CheckpointCycle(checkpoints, this.cycleHost(), this.counters, this.options, clock);
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
    if (this.currentMode === 'protected' && this.cycle.periodic) this.gate.hold();
  }

  start(): void {
    const scanMs = this.engine.options.expiredScanCycleMs;
    this.timers.push(setInterval(() => this.scan(), scanMs));
    this.timers.push(setInterval(() => this.rewriter.sweep(this.clock()), this.options.rewriterSweepMs));
    for (const timer of this.timers) timer.unref();
    this.cycle.arm();
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
    this.cycle.stop();
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

  requestCheckpoint(reason: string, kind: RequestKind = 'other'): void {
    this.counters.checkpointRequests++;
    this.emit('checkpoint-request', { reason });
    this.cycle.request(reason, kind);
  }

  /** The protection mode in force (compare or periodic) and what hybrid has done so far. */
  protection(): ProtectionStatus {
    return this.cycle.status(this.clock());
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
      checkpointRunning: this.cycle.isRunning,
      protection: this.protection(),
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
      // A pass-through rule's flow is unprotected by choice: no hold, periodic or checkpoint, applies to it.
      if (packet.passedByRule === true && gate?.holding === true) {
        this.counters.passedByRuleWhileHeld++;
        gate.passUnheld(packet.frame, packet.start);
      } else gate?.pass(packet.frame, packet.start);
    }
    this.counters.secondaryDropped += decision.drop.length;
    for (const bad of decision.malformed) {
      this.counters.malformed++;
      this.emit('malformed', { side: bad.side, reason: bad.reason });
    }
    if (decision.divergences.length === 0) return;
    // Copy out before emitting: listeners may call back into the engine, which reuses the Decision.
    const divergences: Divergence[] = [...decision.divergences];
    for (const divergence of divergences) {
      this.emit('divergence', divergence);
      // Periodic mode checkpoints on its period whatever the comparison finds; it only keeps count.
      if (this.cycle.periodic && this.currentMode === 'protected') this.cycle.backgroundDivergence(this.clock());
      else this.requestCheckpoint(divergence.reason, 'divergence');
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
    this.cycle.primaryStopping();
  }

  private scan(): void {
    const now = this.clock();
    this.apply(this.engine.tick(now));
    if (this.currentMode === 'protected') this.cycle.tick(now);
  }

  private cycleHost(): CycleHost {
    return {
      canCheckpoint: () => this.currentMode === 'protected' && !this.stopped,
      hold: (now, periodic) => this.hold(now, periodic),
      checkpointStarted: (reason) => this.emit('checkpoint-start', { reason }),
      requestCheckpoint: (reason, kind) => this.requestCheckpoint(reason, kind),
      finish: (reason, ok, releaseAll) => this.finishCheckpoint(reason, ok, releaseAll),
      secondaryLost: (reason) => this.goSolo(reason),
      modeSwitched: (change) => {
        if (change.to === 'periodic' && this.currentMode === 'protected') this.gate?.hold();
        this.emit('protection-mode', change);
      },
    };
  }

  /**
   * The pause starts: the gate and the client's input are held until LOADED. In periodic mode the epoch ends
   * here: what the engine still holds joins the gate's frames, and those are what this checkpoint releases.
   */
  private hold(now: number, periodic: boolean): void {
    this.gate?.hold();
    this.mirror?.hold();
    if (!periodic) return;
    this.apply(this.engine.flush(now));
    this.gate?.seal();
  }

  /**
   * LOADED (or a failed checkpoint that kept the secondary). Compare mode: every held primary frame in order,
   * then the gate's; periodic mode: the epoch sealed at the hold, the newer frames stay held. Then the held
   * client input goes to both VMs.
   */
  private finishCheckpoint(reason: string, ok: boolean, releaseAll: boolean): void {
    const now = this.clock();
    if (ok && this.secondaryTime !== null) this.flushedAt = this.secondaryTime.now();
    let flushedFrames: number;
    if (releaseAll) {
      this.apply(this.engine.flush(now));
      flushedFrames = this.gate?.release() ?? 0;
      if (this.cycle.periodic && this.currentMode === 'protected') this.gate?.hold();
    } else flushedFrames = this.gate?.releaseSealed() ?? 0;
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
    this.apply(this.engine.flush(this.clock()));
    this.gate?.release();
    this.cycle.dropPending();
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
    if (this.cycle.periodic) this.gate?.hold();
    this.cycle.arm();
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
}
