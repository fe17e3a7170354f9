/**
 * What test/proxy/inline-fates.property.test.ts drives and watches: recording ports that keep each frame's
 * identity, a checkpoint engine whose checkpoints end when told to, and a small model of the client's
 * ingress (held while a checkpoint runs, then delivered to the mode's targets) built from the proxy's events.
 */
import { EventEmitter } from 'node:events';
import type { InlineCheckpointEngine, InlineCheckpointOutcome, InlineLossEvent, Mode } from '../../proxy/inline.js';
import type { FramePort } from '../../proxy/port.js';

/** A port that records every frame it is asked to send (by identity) and can be told to refuse. */
export class RecordingPort implements FramePort {
  readonly attempts: Buffer[] = [];
  accepted = 0;
  refused = 0;
  refuse = false;

  send(frame: Buffer): boolean {
    this.attempts.push(frame);
    if (this.refuse) {
      this.refused++;
      return false;
    }
    this.accepted++;
    return true;
  }

  close(): void {
    this.refuse = true;
  }
}

/** The secondary's port also says whether a frame left during a VM frame's call (the rewriter's release). */
export class SecondaryPort extends RecordingPort {
  inVmCall = false;
  direct = 0;
  fromRewriterHold = 0;

  override send(frame: Buffer): boolean {
    if (this.inVmCall) this.fromRewriterHold++;
    else this.direct++;
    return super.send(frame);
  }
}

interface FakeEngineEvents {
  ready: [event: { peer: string; extensions: boolean }];
  'secondary-lost': [event: InlineLossEvent];
  'primary-lost': [event: InlineLossEvent];
}

export type FakeOutcome = 'ok' | 'failed' | 'secondary-lost' | 'rejected';

/** A checkpoint engine whose checkpoints end, oldest first, when the test says how. */
export class FakeCheckpoints extends EventEmitter<FakeEngineEvents> implements InlineCheckpointEngine {
  private pending: Array<{ resolve(o: InlineCheckpointOutcome): void; reject(e: Error): void }> = [];

  constructor(public isProtected: boolean) {
    super();
  }

  get running(): number {
    return this.pending.length;
  }

  checkpoint(): Promise<InlineCheckpointOutcome> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  /** Ends the oldest checkpoint and lets the proxy's continuation run. */
  async finish(outcome: FakeOutcome): Promise<void> {
    const next = this.pending.shift();
    if (!next) return;
    if (outcome === 'rejected') next.reject(new Error('checkpoint engine failed'));
    else next.resolve({ ok: outcome === 'ok', secondaryLost: outcome === 'secondary-lost' });
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const targetsOf = (mode: Mode) => (mode === 'protected' ? 'both' : mode === 'failover' ? 'secondary' : 'primary');

/**
 * Where each client frame went, as the proxy's documented behaviour says it must: held while a checkpoint
 * runs (up to the bound, beyond it dropped), delivered at once otherwise or when the hold is released, to
 * the primary, the secondary or both depending on the mode at delivery.
 */
export class IngressModel {
  holding = false;
  held = 0;
  overflow = 0;
  delivered = 0;
  primaryCopies = 0;
  secondaryCopies = 0;
  /** Mismatches between an event and the model (each a sentence), checked by the property. */
  readonly errors: string[] = [];

  constructor(private readonly maxHeld: number) {}

  clientFrame(mode: Mode): void {
    if (!this.holding) return this.deliver(1, mode);
    if (this.held >= this.maxHeld) this.overflow++;
    else this.held++;
  }

  checkpointStart(): void {
    this.holding = true;
  }

  /** The 'checkpoint' event: the hold was released to the targets of the mode the proxy is in now. */
  checkpointDone(deliveredIngress: number, mode: Mode): void {
    if (deliveredIngress !== this.held) {
      this.errors.push(`checkpoint delivered ${deliveredIngress} held client frames, model held ${this.held}`);
    }
    this.release(mode);
  }

  /** The 'mode' event: solo and failover release the hold (after the mode is set, so to the new targets). */
  modeChanged(mode: Mode): void {
    if (mode === 'solo' || mode === 'failover') this.release(mode);
  }

  private release(mode: Mode): void {
    this.deliver(this.held, mode);
    this.held = 0;
    this.holding = false;
  }

  private deliver(frames: number, mode: Mode): void {
    const targets = targetsOf(mode);
    this.delivered += frames;
    if (targets !== 'secondary') this.primaryCopies += frames;
    if (targets !== 'primary') this.secondaryCopies += frames;
  }
}
