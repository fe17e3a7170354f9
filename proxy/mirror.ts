import { dissectFrame } from '../compare/wire/dissect.js';
import { FrameInfo } from '../compare/wire/frame-info.js';
import type { FramePort } from './port.js';
import type { ReleasedFrames, SeqRewriter } from './rewriter.js';

/** Which VMs receive the client's frames. */
export type MirrorTargets = 'primary' | 'both' | 'secondary';

export interface MirrorCounters {
  toPrimary: number;
  toSecondary: number;
  /** Held while a checkpoint ran, delivered after it. */
  heldIngress: number;
  /** Dropped because the hold was full (the client's TCP retransmits them). */
  heldIngressOverflow: number;
  /** Held by the rewriter until the secondary's ISN was known. */
  heldForIsn: number;
  droppedForIsn: number;
  sendFailures: number;
}

/**
 * Sends each client frame to the VMs: the primary gets it unchanged, the secondary after the rewriter
 * mapped its acknowledgments. While a checkpoint runs, client frames are held (bounded) and delivered to
 * both after LOADED, so both VMs see the same input from the same state.
 *
 * The mirror owns the rewriter's traffic: it also hands the rewriter the VMs' frames (their handshakes teach
 * it the offset), and sends to the secondary the client frames the rewriter returns as released.
 */
export class Mirror {
  readonly counters: MirrorCounters = {
    toPrimary: 0,
    toSecondary: 0,
    heldIngress: 0,
    heldIngressOverflow: 0,
    heldForIsn: 0,
    droppedForIsn: 0,
    sendFailures: 0,
  };
  targets: MirrorTargets = 'primary';
  private holding = false;
  private held: Buffer[] = [];
  /** Held client frames are dissected again on delivery: the proxy's FrameInfo has moved on. */
  private readonly heldInfo = new FrameInfo();

  constructor(
    private readonly primary: FramePort,
    private readonly secondary: FramePort,
    private readonly rewriter: SeqRewriter,
    private readonly maxHeldIngress: number,
  ) {}

  get heldFrames(): number {
    return this.held.length;
  }

  hold(): void {
    this.holding = true;
  }

  /** Delivers the held client frames (to the current targets) and stops holding. */
  release(now: number): number {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const frame of held) this.deliver(frame, dissectFrame(frame, this.heldInfo), now);
    return held.length;
  }

  /** A frame the primary sent (dissected): its handshake may let the rewriter release held client frames. */
  fromPrimary(info: FrameInfo, now: number): void {
    this.sendReleased(this.rewriter.fromPrimary(info, now));
  }

  /** A frame the secondary sent (dissected): mapped into the primary's space in place, and as fromPrimary. */
  fromSecondary(frame: Buffer, info: FrameInfo, now: number): void {
    this.sendReleased(this.rewriter.fromSecondary(frame, info, now));
  }

  /** `info` is null for a frame that did not dissect: it is mirrored unchanged. */
  onClientFrame(frame: Buffer, info: FrameInfo | null, now: number): void {
    if (this.holding) {
      if (this.held.length >= this.maxHeldIngress) {
        this.counters.heldIngressOverflow++;
        return;
      }
      this.held.push(frame);
      this.counters.heldIngress++;
      return;
    }
    this.deliver(frame, info, now);
  }

  /**
   * The primary's copy goes first and unchanged: ports copy synchronously, so the rewriter may then patch
   * the same buffer in place for the secondary.
   */
  private deliver(frame: Buffer, info: FrameInfo | null, now: number): void {
    if (this.targets !== 'secondary') {
      if (this.primary.send(frame, 0)) this.counters.toPrimary++;
      else this.counters.sendFailures++;
    }
    if (this.targets === 'primary') return;
    if (info !== null) {
      const verdict = this.rewriter.toSecondary(frame, info, now);
      if (verdict === 'held') {
        this.counters.heldForIsn++;
        return;
      }
      if (verdict === 'dropped') {
        this.counters.droppedForIsn++;
        return;
      }
    }
    this.sendToSecondary(frame);
  }

  private sendReleased(released: ReleasedFrames): void {
    for (let frame = released.shift(); frame !== undefined; frame = released.shift()) this.sendToSecondary(frame);
  }

  private sendToSecondary(frame: Buffer): void {
    if (this.secondary.send(frame, 0)) this.counters.toSecondary++;
    else this.counters.sendFailures++;
  }
}
