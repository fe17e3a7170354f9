/**
 * TCP stream comparison. Each side's segments are placed by stream offset, `seq` minus that side's own base
 * (its first-seen sequence number since the connection was first seen or last flushed), so the secondary may
 * use a different ISN and cut its stream into different segments. `conn.matched` is the offset up to which
 * both streams were compared equal; segments wholly below it are retransmissions and are not compared again.
 *
 * Rules (docs/qemu-differences.md lists where they differ from QEMU):
 * - Offsets count sequence space: a SYN is one unit before its data, a FIN one unit after it. Both sides must
 *   have the same unit at the same offset: SYN against SYN, byte against equal byte, FIN against FIN; and a RST
 *   where the other side sends a RST after the same amount of stream. Anything else is 'payload' or 'flags'.
 * - A primary segment is released once all its units were compared (or were already compared before: a
 *   retransmission) AND the min-ack rule holds: the secondary has acknowledged at least as much as the segment
 *   acknowledges. Until then it waits; a wait that outlasts compare_timeout becomes reason 'ack' at the next
 *   stale scan. Releases follow sequence order, so a waiting segment holds back the ones after it.
 * - A primary pure ACK (no data, SYN, FIN or RST) has nothing to compare: the min-ack rule alone releases it.
 *   A secondary pure ACK only raises the secondary's ack and is dropped at once (the engine does that).
 * - The secondary's ack is the highest seen (wrap-aware), not the last: acks are cumulative, so an older
 *   segment arriving late must not lower it and stall or fail primaries the secondary already covered.
 * - Headers are not compared (ports are the key; seq/ack/window/options such as timestamps legitimately
 *   differ), and payload ends at the IP total length, so Ethernet padding is never payload.
 *
 * After a flush (docs/compare.md, "TCP alignment after a checkpoint"), comparison restarts in one of two ways:
 * - 'next-segment' (QEMU-like): each side's base becomes its next segment, as for a new connection. Right when
 *   both sides resume at the same stream point (clones) and their sequence spaces may differ.
 * - 'sequence': the secondary's seqs are already in the primary's space (the inline proxy rewrites them), so
 *   both sides share one base, the primary's position at the flush. A secondary that lags resends units the
 *   primary already released: they lie below the frontier and are dropped (counted). A secondary that leads
 *   will not send again what it sent before the flush (a resend of it is dropped, counted): the primary's
 *   units below that point are released unverified (counted). Beyond both positions, units at equal sequence
 *   numbers are compared; a segment across that point is compared from there.
 */
import { TcpPositions, type Connection } from './conntrack.js';
import type { HeldPacket } from './held-packet.js';
import { seqGt, seqLe, seqLt } from './seq.js';
import { firstDifference, type ComparisonSink } from './sink.js';
import { furthestEnd, segmentEnd, segmentUnits } from './tcp-stream.js';
import { TcpFlag } from './wire/frame-info.js';

/** Once `matched` passes this, bases move forward so stream offsets stay in signed 32-bit range. */
const REBASE_AT = 0x40000000;

export function isPureAck(packet: HeldPacket): boolean {
  return packet.payloadLength === 0 && (packet.tcpFlags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === 0;
}

/** Sequence units a segment occupies: SYN + payload + FIN. */
function units(packet: HeldPacket): number {
  return segmentUnits(packet.tcpFlags, packet.payloadLength);
}

/** What the TCP comparator counts beyond releases and drops; the engine owns one and reports it in stats(). */
export class TcpCounters {
  /**
   * Secondary segments dropped uncompared: resends of units already compared or released (a lagging secondary
   * after a flush), or, in sequence alignment, of units it had sent before the flush.
   */
  secondaryResendsDropped = 0;
  /** Primary segments (and their sequence units) released unverified: the secondary sent them before a flush. */
  unverifiedSegments = 0;
  unverifiedUnits = 0;
  /** SYNs with a new sequence number on a sequence-aligned connection: comparison restarted from them. */
  streamRestarts = 0;
}

/** Record what a secondary segment says: its ack, and (`sent`: sequence alignment) how far it has sent. */
export function noteSecondary(conn: Connection, packet: HeldPacket, counters: TcpCounters, sent: boolean): void {
  if (sent) noteSecondarySent(conn, packet, counters);
  noteSecondaryAck(conn, packet);
}

/**
 * Sequence alignment only: record how far the secondary has sent. Call for every secondary segment, queued or
 * not (segments dropped while the connection is diverged still move the secondary forward), before
 * noteSecondaryAck(): a SYN that starts a new stream forgets the old stream's ack.
 */
function noteSecondarySent(conn: Connection, packet: HeldPacket, counters: TcpCounters): void {
  if (isPureAck(packet)) return;
  if (packet.tcpFlags & TcpFlag.SYN) checkNewStream(conn, packet, counters);
  const pos = positionsOf(conn);
  const end = segmentEnd(packet.seq, packet.tcpFlags, packet.payloadLength);
  pos.secondaryEnd = furthestEnd(pos.hasSecondaryEnd, pos.secondaryEnd, end);
  pos.hasSecondaryEnd = true;
}

/** Record what the secondary has acknowledged. Call for every secondary segment, queued or not. */
function noteSecondaryAck(conn: Connection, packet: HeldPacket): void {
  if ((packet.tcpFlags & TcpFlag.ACK) === 0) return;
  if (!conn.hasSecondaryAck || seqGt(packet.ack, conn.secondaryAck)) {
    conn.secondaryAck = packet.ack;
    conn.hasSecondaryAck = true;
  }
}

/**
 * A SYN on a sequence-aligned connection is a retransmission when it repeats the primary's last SYN; any other
 * SYN starts a new stream (the 4-tuple reused, or the secondary's handshake before its offset was learned), and
 * positions from the old one mean nothing: comparison restarts as for a new connection, each side from its own
 * next segment. The diverged flag and the queues are kept.
 */
function checkNewStream(conn: Connection, packet: HeldPacket, counters: TcpCounters): void {
  const pos = positionsOf(conn);
  if (!conn.alignedBySeq || (pos.hasSynSeq && packet.seq === pos.synSeq)) return;
  counters.streamRestarts++;
  const diverged = conn.diverged;
  conn.resetComparison();
  conn.diverged = diverged;
  pos.hasPrimaryEnd = false;
  pos.hasSecondaryEnd = false;
}

/**
 * Queue a segment in sequence order (equal sequence numbers stay in arrival order) and fix the side's base:
 * the first segment sets it; before anything was compared a lower sequence number lowers it, so segments
 * reordered at the very start still line up. In sequence alignment, notePrimarySent() comes first.
 */
export function enqueueTcp(conn: Connection, packet: HeldPacket): void {
  const primary = packet.side === 'primary';
  const pureAck = isPureAck(packet);
  const queue = primary ? conn.primary : conn.secondary;
  let index = queue.length;
  while (index > 0 && seqLt(packet.seq, queue.at(index - 1)!.seq)) index--;
  if (index === queue.length) queue.push(packet);
  else queue.insertAt(index, packet);

  if (pureAck) return;
  if (conn.alignedBySeq) return void shareBase(conn, packet);
  const hasBase = primary ? conn.hasPrimaryBase : conn.hasSecondaryBase;
  const base = primary ? conn.primaryBase : conn.secondaryBase;
  if (hasBase && (conn.comparedAny || !seqLt(packet.seq, base))) return;
  if (primary) {
    conn.primaryBase = packet.seq;
    conn.hasPrimaryBase = true;
    conn.synUnits = packet.tcpFlags & TcpFlag.SYN ? 1 : 0;
  } else {
    conn.secondaryBase = packet.seq;
    conn.hasSecondaryBase = true;
  }
}

/** Sequence alignment only: record how far the primary has sent, and its SYN. Call for every primary segment. */
export function notePrimarySent(conn: Connection, packet: HeldPacket, counters: TcpCounters): void {
  if (isPureAck(packet)) return;
  const pos = positionsOf(conn);
  if (packet.tcpFlags & TcpFlag.SYN) {
    checkNewStream(conn, packet, counters);
    pos.synSeq = packet.seq;
    pos.hasSynSeq = true;
  }
  const end = segmentEnd(packet.seq, packet.tcpFlags, packet.payloadLength);
  pos.primaryEnd = furthestEnd(pos.hasPrimaryEnd, pos.primaryEnd, end);
  pos.hasPrimaryEnd = true;
}

/**
 * Sequence alignment: one base for both sides. Normally the flush set it (the primary's position); when the
 * primary had sent nothing yet, the first segment from either side sets it, and a lower one moves it down
 * until something was compared.
 */
function shareBase(conn: Connection, packet: HeldPacket): void {
  if (conn.hasPrimaryBase && (conn.comparedAny || !seqLt(packet.seq, conn.primaryBase))) return;
  conn.primaryBase = packet.seq;
  conn.secondaryBase = packet.seq;
  conn.hasPrimaryBase = true;
  conn.hasSecondaryBase = true;
  conn.synUnits = packet.tcpFlags & TcpFlag.SYN ? 1 : 0;
}

/**
 * The flush in 'sequence' alignment (the engine has emptied both queues). The secondary's highest ack is kept:
 * acks are cumulative and what it proved it received stays true; a leading secondary may send nothing for a
 * while, and the primary's unverified units must not wait for a new ack meanwhile.
 */
export function anchorAtFlush(conn: Connection): void {
  const ack = conn.secondaryAck;
  const hasAck = conn.hasSecondaryAck;
  conn.resetComparison();
  conn.secondaryAck = ack;
  conn.hasSecondaryAck = hasAck;
  conn.alignedBySeq = true;
  const pos = positionsOf(conn);
  if (pos.hasPrimaryEnd) {
    conn.primaryBase = pos.primaryEnd;
    conn.secondaryBase = pos.primaryEnd;
    conn.hasPrimaryBase = true;
    conn.hasSecondaryBase = true;
    conn.comparedAny = true;
  }
  if (pos.hasSecondaryEnd && (!pos.hasPrimaryEnd || seqGt(pos.secondaryEnd, pos.primaryEnd))) {
    pos.resumeSeq = pos.secondaryEnd;
    conn.hasResume = true;
    // No primary segment in the skipped range can start at resumeSeq, so the first skip always counts.
    pos.lastUnverifiedSeq = pos.secondaryEnd;
  }
}

function positionsOf(conn: Connection): TcpPositions {
  return conn.positions ?? (conn.positions = new TcpPositions());
}

function ackAllows(conn: Connection, packet: HeldPacket): boolean {
  if ((packet.tcpFlags & TcpFlag.ACK) === 0) return true;
  return conn.hasSecondaryAck && seqLe(packet.ack, conn.secondaryAck);
}

/** All of the segment's units lie below the compared frontier (a RST also needs its match). */
function covered(packet: HeldPacket, start: number, matched: number): boolean {
  const end = start + units(packet);
  if (end < matched) return true;
  return end === matched && ((packet.tcpFlags & TcpFlag.RST) === 0 || packet.rstMatched);
}

function reportOffset(conn: Connection, streamOffset: number): number {
  return conn.streamOrigin + streamOffset - conn.synUnits;
}

function rebase(conn: Connection): void {
  const shift = conn.matched;
  conn.primaryBase = (conn.primaryBase + shift) >>> 0;
  conn.secondaryBase = (conn.secondaryBase + shift) >>> 0;
  conn.matched = 0;
  conn.streamOrigin += shift;
}

/**
 * Advance as far as both queues allow: release compared primaries, drop compared secondaries, compare the
 * next units at the frontier. Stops at a gap, an empty queue, an ack wait or a divergence.
 */
export function compareTcp(conn: Connection, sink: ComparisonSink, counters: TcpCounters): void {
  const pq = conn.primary;
  const sq = conn.secondary;
  conn.ackBlocked = false;
  if (conn.matched > REBASE_AT) rebase(conn);
  while (!conn.diverged) {
    const p = pq.peek();
    let pStart = 0;
    if (p !== undefined) {
      if (isPureAck(p)) {
        if (!ackAllows(conn, p)) return void (conn.ackBlocked = true);
        sink.release(pq.shift()!);
        continue;
      }
      pStart = (p.seq - conn.primaryBase) | 0;
      if (covered(p, pStart, conn.matched)) {
        if (!ackAllows(conn, p)) return void (conn.ackBlocked = true);
        sink.release(pq.shift()!);
        continue;
      }
    }
    const s = sq.peek();
    let sStart = 0;
    if (s !== undefined) {
      sStart = (s.seq - conn.secondaryBase) | 0;
      if (isPureAck(s) || covered(s, sStart, conn.hasResume ? secondaryFrontier(conn) : conn.matched)) {
        // (Queued secondaries are never pure ACKs: the engine drops those on arrival.)
        if (conn.secondaryHeadCompared) conn.secondaryHeadCompared = false;
        else counters.secondaryResendsDropped++;
        sink.drop(sq.shift()!);
        continue;
      }
    }
    if (p === undefined) return;
    const m = conn.matched;
    // A side whose next segment starts beyond the frontier is missing bytes: wait for them.
    if (pStart > m) return;
    if (conn.hasResume) {
      const skip = skipUnverified(conn, p, pStart, m, counters);
      if (skip === Skip.Moved) continue;
      if (skip === Skip.Wait) return;
    }
    if (s === undefined || sStart > m) return;
    if (!compareAtFrontier(conn, p, pStart, s, sStart, m, sink)) return;
  }
}

/**
 * Sequence alignment, the secondary ahead at the flush: it sent the units up to its resume point before the
 * flush and will not send them again (a resend below that point is dropped), so its frontier is that point.
 */
function secondaryFrontier(conn: Connection): number {
  const resume = (conn.positions!.resumeSeq - conn.primaryBase) | 0;
  if (resume > conn.matched) return resume;
  // Passed for good only once the base is fixed: until then a lower segment may still move it down.
  if (conn.comparedAny) conn.hasResume = false;
  return conn.matched;
}

const enum Skip {
  /** The frontier moved over unverified primary units. */
  Moved,
  /** Nothing can move: a bare RST inside the secondary's lead waits (and times out). */
  Wait,
  /** The frontier is at or past the resume point: compare. */
  Passed,
}

/**
 * The primary's units from the frontier up to the secondary's resume point (or the end of the primary's
 * segment) are passed without comparison, and counted.
 */
function skipUnverified(conn: Connection, p: HeldPacket, pStart: number, m: number, counters: TcpCounters): Skip {
  const pos = conn.positions!;
  const resume = (pos.resumeSeq - conn.primaryBase) | 0;
  if (resume <= m) {
    // Passed for good once the base is fixed (the comparison that follows fixes it too).
    if (conn.comparedAny) conn.hasResume = false;
    return Skip.Passed;
  }
  const to = Math.min(resume, pStart + units(p));
  if (to <= m) return Skip.Wait;
  counters.unverifiedUnits += to - m;
  if (p.seq !== pos.lastUnverifiedSeq) {
    counters.unverifiedSegments++;
    pos.lastUnverifiedSeq = p.seq;
  }
  conn.matched = to;
  conn.comparedAny = true;
  return Skip.Moved;
}

/** Compare the units at offset `m`; false after reporting a divergence. */
function compareAtFrontier(
  conn: Connection,
  p: HeldPacket,
  pStart: number,
  s: HeldPacket,
  sStart: number,
  m: number,
  sink: ComparisonSink,
): boolean {
  const pSynUnit = p.tcpFlags & TcpFlag.SYN ? 1 : 0;
  const sSynUnit = s.tcpFlags & TcpFlag.SYN ? 1 : 0;
  const pSynHere = pSynUnit === 1 && pStart === m;
  const sSynHere = sSynUnit === 1 && sStart === m;
  if (pSynHere !== sSynHere) {
    return flags(
      conn,
      m,
      p,
      s,
      sink,
      `SYN at stream offset ${m - conn.synUnits} on the ${pSynHere ? 'primary' : 'secondary'} only`,
    );
  }
  conn.comparedAny = true;
  conn.secondaryHeadCompared = true;
  if (pSynHere) {
    conn.matched = m + 1;
    return true;
  }
  const pDataStart = pStart + pSynUnit;
  const sDataStart = sStart + sSynUnit;
  const pDataEnd = pDataStart + p.payloadLength;
  const sDataEnd = sDataStart + s.payloadLength;
  const pData = m < pDataEnd;
  const sData = m < sDataEnd;
  if (pData && sData) {
    const length = Math.min(pDataEnd, sDataEnd) - m;
    const pAt = p.payloadOffset + (m - pDataStart);
    const sAt = s.payloadOffset + (m - sDataStart);
    const differs = firstDifference(p.frame, pAt, s.frame, sAt, length);
    if (differs >= 0) {
      const offset = reportOffset(conn, m + differs);
      sink.diverge(conn, 'payload', offset, p, s, `payload differs at stream offset ${offset}`);
      return false;
    }
    conn.matched = m + length;
    return true;
  }
  if (pData !== sData) {
    const ender = pData ? s : p;
    const how = ender.tcpFlags & TcpFlag.FIN ? 'FIN' : 'RST';
    return flags(conn, m, p, s, sink, `${pData ? 'secondary' : 'primary'} sends ${how} where the other sends data`);
  }
  const pFinHere = (p.tcpFlags & TcpFlag.FIN) !== 0 && pDataEnd === m;
  const sFinHere = (s.tcpFlags & TcpFlag.FIN) !== 0 && sDataEnd === m;
  if (pFinHere !== sFinHere) {
    return flags(conn, m, p, s, sink, `FIN on the ${pFinHere ? 'primary' : 'secondary'} only`);
  }
  if (pFinHere) {
    conn.matched = m + 1;
    return true;
  }
  // Neither segment is covered, and neither has a SYN, data or FIN left at m: both end in a RST here.
  if ((p.tcpFlags & TcpFlag.RST) === 0 || (s.tcpFlags & TcpFlag.RST) === 0) {
    return flags(conn, m, p, s, sink, `RST on the ${p.tcpFlags & TcpFlag.RST ? 'primary' : 'secondary'} only`);
  }
  p.rstMatched = true;
  s.rstMatched = true;
  return true;
}

function flags(conn: Connection, m: number, p: HeldPacket, s: HeldPacket, sink: ComparisonSink, detail: string): false {
  sink.diverge(conn, 'flags', reportOffset(conn, m), p, s, detail);
  return false;
}
