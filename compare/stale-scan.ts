import type { Connection } from './conntrack.js';
import type { HeldPacket } from './held-packet.js';
import type { ComparisonSink } from './sink.js';

/**
 * The stale scan behind CompareEngine.tick(): every connection from `first` on (first-seen order) that is not
 * diverged and holds a packet older than `limitMs` asks `sink` for a checkpoint. Reason 'ack' when the stale
 * primary only waits for the secondary's ack, 'timeout' otherwise.
 */
export function askStaleCheckpoints(
  first: Connection | null,
  now: number,
  limitMs: number,
  sink: ComparisonSink,
): void {
  for (let conn = first; conn !== null; conn = conn.nextSeen) {
    if (conn.diverged || (conn.primary.length === 0 && conn.secondary.length === 0)) continue;
    const stalePrimary = oldestBefore(conn.primary, now - limitMs);
    const staleSecondary = stalePrimary === null ? oldestBefore(conn.secondary, now - limitMs) : null;
    if (stalePrimary === null && staleSecondary === null) continue;
    const stale = (stalePrimary ?? staleSecondary)!;
    const age = now - stale.arrivedAt;
    if (conn.ackBlocked && stalePrimary !== null) {
      const detail = `primary ack ${stalePrimary.ack} waited ${age} ms for the secondary (highest ack ${conn.hasSecondaryAck ? conn.secondaryAck : 'none'})`;
      sink.diverge(conn, 'ack', null, stalePrimary, null, detail);
    } else {
      sink.diverge(conn, 'timeout', null, stalePrimary, staleSecondary, `${stale.side} packet held ${age} ms`);
    }
  }
}

function oldestBefore(
  queue: { length: number; at(i: number): HeldPacket | undefined },
  cutoff: number,
): HeldPacket | null {
  let oldest: HeldPacket | null = null;
  for (let i = 0; i < queue.length; i++) {
    const packet = queue.at(i)!;
    if (packet.arrivedAt < cutoff && (oldest === null || packet.arrivedAt < oldest.arrivedAt)) oldest = packet;
  }
  return oldest;
}
