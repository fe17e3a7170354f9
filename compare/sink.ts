import type { Connection } from './conntrack.js';
import type { HeldPacket } from './held-packet.js';
import type { DivergenceReason } from './types.js';

/**
 * What a comparator tells the engine. The comparators only decide; the engine owns the Decision, the
 * counters and the divergence records, so each comparator can be driven by a test double.
 */
export interface ComparisonSink {
  /** A primary packet may go to the client (called in sending order). */
  release(packet: HeldPacket): void;
  /** A secondary packet has served its purpose (or can never be compared) and is discarded. */
  drop(packet: HeldPacket): void;
  /**
   * The sides differ: ask for one checkpoint for this connection. `offset` is the first differing byte (see
   * Divergence.offset) or null. The engine marks the connection diverged, so the comparator stops.
   */
  diverge(
    conn: Connection,
    reason: DivergenceReason,
    offset: number | null,
    primary: HeldPacket | null,
    secondary: HeldPacket | null,
    detail: string,
  ): void;
}

/**
 * Index of the first differing byte of a[aStart..aStart+length) and b[bStart..bStart+length), or -1.
 * Buffer#compare (a memcmp) answers the common equal case; the byte loop runs only for short runs, where the
 * native call costs more than it saves, and to locate the difference once one is known to exist.
 */
export function firstDifference(a: Buffer, aStart: number, b: Buffer, bStart: number, length: number): number {
  if (length >= 32 && a.compare(b, bStart, bStart + length, aStart, aStart + length) === 0) return -1;
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return i;
  return -1;
}
