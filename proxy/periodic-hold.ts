import type { Packet } from '../compare/types.js';

/** How much the hold may keep; past either bound the loop releases it unprotected (counted), never drops it. */
export interface HoldBounds {
  maxFrames: number;
  maxBytes: number;
}

/**
 * The primary frames periodic mode holds for a checkpoint, in the order the engine released them.
 *
 * Each frame is still a view of its read slab (proxy/ports/read-slabs.ts): whoever takes it out reports it
 * done once it is copied out. Frames of one read lie side by side in a slab, so what the hold pins is about
 * the bytes it holds.
 *
 * A packet's `tag` is its primary arrival number (the compare loop numbers the frames it pushes). A
 * checkpoint releases the frames that arrived before its request was sent: those are the output of the state
 * it saved. Later frames belong to the next one.
 */
export class PeriodicHold {
  private queue: Packet[] = [];
  private heldBytes = 0;

  constructor(readonly bounds: HoldBounds) {}

  get frames(): number {
    return this.queue.length;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  push(packet: Packet): void {
    this.queue.push(packet);
    this.heldBytes += packet.frame.length;
  }

  overBound(): boolean {
    return this.queue.length > this.bounds.maxFrames || this.heldBytes > this.bounds.maxBytes;
  }

  /**
   * Takes the leading frames that arrived no later than arrival number `cut` (Infinity: all of them). Only a
   * prefix: output keeps the engine's order, so a frame that arrived in time but was released after a later
   * arrival waits with it for the next checkpoint.
   */
  take(cut: number): Packet[] {
    const queue = this.queue;
    let n = 0;
    while (n < queue.length && queue[n].tag <= cut) n++;
    if (n === 0) return [];
    const out = n === queue.length ? queue : queue.slice(0, n);
    this.queue = n === queue.length ? [] : queue.slice(n);
    for (let i = 0; i < out.length; i++) this.heldBytes -= out[i].frame.length;
    return out;
  }
}
