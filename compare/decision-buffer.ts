import type { Decision, Divergence, MalformedFrame, Packet } from './types.js';

/**
 * The engine's one Decision, filled anew by every call; callers see it through the read-only Decision.
 * Arrays hold HeldPacket (a Packet with the dissected offsets) so the engine never copies a packet out.
 */
export class DecisionBuffer implements Decision {
  readonly release: Packet[] = [];
  readonly drop: Packet[] = [];
  readonly divergences: Divergence[] = [];
  readonly malformed: MalformedFrame[] = [];

  clear(): this {
    // pop() rather than `length = 0`: truncating makes V8 shrink the backing store, so the next push
    // allocates a new one; popping keeps it (measured: about 8x cheaper per call).
    emptyArray(this.release);
    emptyArray(this.drop);
    emptyArray(this.divergences);
    emptyArray(this.malformed);
    return this;
  }
}

function emptyArray(array: unknown[]): void {
  while (array.length > 0) array.pop();
}
