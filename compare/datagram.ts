/**
 * Datagram comparison (UDP, ICMP, ICMPv6) and the FIFO matcher shared with other-ip.ts and non-ip.ts.
 *
 * Matching: the oldest held primary is looked for in the secondary queue, oldest first; the first equal one is
 * dropped and the primary released, then the next primary is tried. If none is equal, the connection diverges,
 * reported against the oldest secondary. QEMU takes the newest primary first, which reorders datagrams and
 * reports the wrong pair; we keep sending order.
 *
 * What is compared: from the transport header to the end of the transport payload, so the IP header (TTL, ID,
 * checksum) and Ethernet padding are ignored. The transport checksum is skipped too: it is a function of the
 * bytes compared here and of the addresses (part of the key), and checksum offload may leave it unfinished.
 */
import type { Connection } from './conntrack.js';
import type { HeldPacket } from './held-packet.js';
import { firstDifference, type ComparisonSink } from './sink.js';
import { IpProtocol } from './wire/frame-info.js';

export type MismatchReason = 'length' | 'payload' | 'header';

/** Filled by a comparer that returns false; read before the next comparison. */
export interface Mismatch {
  reason: MismatchReason;
  /** Within the payload for 'length' and 'payload', within the compared header for 'header'. */
  offset: number;
}

export const lastMismatch: Mismatch = { reason: 'payload', offset: 0 };

/** True when equal; otherwise false with `lastMismatch` filled. */
export type DatagramComparer = (primary: HeldPacket, secondary: HeldPacket) => boolean;

/** Compares two byte ranges as payloads: sizes first (reason 'length'), then bytes (reason 'payload'). */
export function comparePayloads(
  p: Buffer,
  pStart: number,
  pLength: number,
  s: Buffer,
  sStart: number,
  sLength: number,
): boolean {
  const common = pLength < sLength ? pLength : sLength;
  const differs = firstDifference(p, pStart, s, sStart, common);
  if (pLength !== sLength) {
    lastMismatch.reason = 'length';
    lastMismatch.offset = differs >= 0 ? differs : common;
    return false;
  }
  if (differs >= 0) {
    lastMismatch.reason = 'payload';
    lastMismatch.offset = differs;
    return false;
  }
  return true;
}

/** Compares header bytes [start, start+length) of both frames, skipping `skip` bytes at `skipAt` (relative). */
export function compareHeaders(
  p: Buffer,
  pStart: number,
  s: Buffer,
  sStart: number,
  length: number,
  skipAt: number,
  skip: number,
): boolean {
  for (let i = 0; i < length; i++) {
    if (i === skipAt) {
      i += skip - 1;
      continue;
    }
    if (p[pStart + i] !== s[sStart + i]) {
      lastMismatch.reason = 'header';
      lastMismatch.offset = i;
      return false;
    }
  }
  return true;
}

function checksumOffset(protocol: number): number {
  return protocol === IpProtocol.UDP ? 6 : 2;
}

/** UDP, ICMP or ICMPv6: payload first (so a size change reads as 'length'), then the transport header. */
export const compareDatagram: DatagramComparer = (p, s) => {
  if (!comparePayloads(p.frame, p.payloadOffset, p.payloadLength, s.frame, s.payloadOffset, s.payloadLength)) {
    return false;
  }
  const pHeader = p.payloadOffset - p.l4Offset;
  if (pHeader !== s.payloadOffset - s.l4Offset) {
    lastMismatch.reason = 'header';
    lastMismatch.offset = Math.min(pHeader, s.payloadOffset - s.l4Offset);
    return false;
  }
  return compareHeaders(p.frame, p.l4Offset, s.frame, s.l4Offset, pHeader, checksumOffset(p.ipProtocol), 2);
};

/** FIFO matching of a connection's queues (see the file comment). Stops at an empty queue or a divergence. */
export function matchDatagrams(conn: Connection, sink: ComparisonSink, equal: DatagramComparer): void {
  const pq = conn.primary;
  const sq = conn.secondary;
  while (!conn.diverged) {
    const p = pq.peek();
    if (p === undefined || sq.length === 0) return;
    let found = -1;
    for (let i = 0; i < sq.length; i++) {
      if (equal(p, sq.at(i)!)) {
        found = i;
        break;
      }
    }
    if (found >= 0) {
      sink.release(pq.shift()!);
      sink.drop(sq.removeAt(found)!);
      continue;
    }
    const s = sq.peek()!;
    equal(p, s);
    const { reason, offset } = lastMismatch;
    const where = reason === 'header' ? 'header byte' : 'payload offset';
    sink.diverge(conn, reason, offset, p, s, `${conn.protocol} ${reason} differs at ${where} ${offset}`);
  }
}
