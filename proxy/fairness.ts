import type { Side } from '../compare/types.js';

/**
 * Fairness between the compare loop's two inputs: which one is read next.
 *
 * libuv reads a busy socket up to 32 times per wakeup (2 MB at 64 KiB a read), so one input can get a
 * thousand frames ahead of the other and overflow the engine's per-connection queue although both VMs send
 * at the same rate. The input that is HOLD_LEAD_FRAMES ahead stops being read (held) until the other is
 * within RELEASE_LEAD_FRAMES of it, or until the other stays silent for IDLE_FORGIVE_MS (an idle or gone
 * VM: nothing to wait for). Inputs in step are never paused: pausing and resuming a socket every turn was
 * a third of the CPU per frame.
 */
export const HOLD_LEAD_FRAMES = 256;
export const RELEASE_LEAD_FRAMES = 128;
/**
 * A held input whose counterpart delivered nothing for this long is let go (its lead is forgiven). At 2 ms
 * a loaded machine's scheduling gaps forgave leads often enough to overflow a 1024-frame queue; 10 ms did
 * not in the same runs.
 */
export const IDLE_FORGIVE_MS = 10;

/** An input that can stop and restart being read (FramedSocket's hold/unhold fit). */
export interface HoldableInput {
  hold(): void;
  unhold(): void;
}

export interface FairnessCounters {
  /** Times one input stopped being read because it was HOLD_LEAD_FRAMES ahead of the other. */
  fairnessHolds: number;
  /** Holds ended because the other input stayed silent (nothing to wait for), not because it caught up. */
  fairnessForgiven: number;
}

export class InputFairness {
  private inputs: Record<Side, HoldableInput> | null = null;
  /** Primary frames minus secondary frames read since the last forgiveness. */
  private lead = 0;
  private heldSide: Side | null = null;
  /** Whether the side not held delivered anything since the hold (or the last idle check). */
  private otherDelivered = false;
  /** One timer for the whole loop, re-armed with refresh(): no timer object per hold. */
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly counters: FairnessCounters) {}

  /** Until attached, nothing is held (there is nothing to hold). */
  attach(inputs: Record<Side, HoldableInput>): void {
    this.inputs = inputs;
  }

  /** Which input, if any, is held. */
  get held(): Side | null {
    return this.heldSide;
  }

  /** `side` delivered `n` frames (one read chunk): hold the side that ran ahead, release one caught up with. */
  delivered(side: Side, n: number): void {
    this.lead += side === 'primary' ? n : -n;
    const held = this.heldSide;
    if (held !== null) {
      if (side === held) return; // data read before the hold took effect
      this.otherDelivered = true;
      const heldLead = held === 'primary' ? this.lead : -this.lead;
      if (heldLead > RELEASE_LEAD_FRAMES) return;
      this.unhold();
    }
    if (this.lead > HOLD_LEAD_FRAMES) this.hold('primary');
    else if (this.lead < -HOLD_LEAD_FRAMES) this.hold('secondary');
  }

  stop(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private hold(side: Side): void {
    if (this.inputs === null) return;
    this.heldSide = side;
    this.otherDelivered = false;
    this.counters.fairnessHolds++;
    this.inputs[side].hold();
    if (this.idleTimer === null) this.idleTimer = setTimeout(() => this.idleCheck(), IDLE_FORGIVE_MS);
    else this.idleTimer.refresh();
  }

  private unhold(): void {
    const held = this.heldSide;
    if (held === null || this.inputs === null) return;
    this.heldSide = null;
    this.inputs[held].unhold();
  }

  private idleCheck(): void {
    if (this.heldSide === null) return;
    if (this.otherDelivered) {
      // The other input is moving: it will catch up and release the hold.
      this.otherDelivered = false;
      this.idleTimer?.refresh();
      return;
    }
    // The other input is silent (idle VM, disconnected peer, different segmentation): don't wait for it.
    this.counters.fairnessForgiven++;
    this.lead = 0;
    this.unhold();
  }
}
