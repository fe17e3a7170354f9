/**
 * TCP stream arithmetic shared by the comparator (tcp.ts) and the inline proxy's sequence rewriter: how many
 * sequence units a segment occupies, where it ends, and how far a sender has sent.
 */
import { seqGt } from './seq.js';
import { TcpFlag } from './wire/frame-info.js';

/** Sequence units a segment occupies: its payload, plus one each for SYN and FIN (TCP counts both). */
export function segmentUnits(tcpFlags: number, payloadLength: number): number {
  return payloadLength + (tcpFlags & TcpFlag.SYN ? 1 : 0) + (tcpFlags & TcpFlag.FIN ? 1 : 0);
}

/** The sequence number just past a segment, mod 2^32. */
export function segmentEnd(seq: number, tcpFlags: number, payloadLength: number): number {
  return (seq + segmentUnits(tcpFlags, payloadLength)) >>> 0;
}

/**
 * A sender's stream end after it sent a segment ending at `end`: the later of the two (wrap-aware), so a
 * retransmission or a late segment never moves it back. `known` false: nothing was sent yet, `end` it is.
 */
export function furthestEnd(known: boolean, current: number, end: number): number {
  return !known || seqGt(end, current) ? end : current;
}
