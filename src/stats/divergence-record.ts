import type { Divergence, DivergenceReason, Packet, Protocol } from '../../compare/types.js';
import { dissect } from '../../compare/wire/dissect.js';
import { FrameInfo, IpProtocol, TcpFlag } from '../../compare/wire/frame-info.js';

/**
 * The one shape of a divergence outside the engine: the replay summary's `divergences`, each `divergence`
 * line of the NDJSON event log, `/stats`' `divergences.recent` and the JSON line of each pcapng comment are
 * all built by divergenceRecord(). Documented field by field in docs/statistics.md.
 */
export interface DivergenceRecord {
  /**
   * Milliseconds since the Unix epoch, to the microsecond: the proxy's wall clock when the engine reported
   * it (run, compare), or the capture's own timestamps (replay: its virtual time plus the first frame's).
   */
  time: number;
  connection: DivergenceConnection;
  reason: DivergenceReason;
  /**
   * Byte offset of the first difference: within the connection's stream for TCP (counted from the first
   * byte compared since the connection was first seen or last flushed), within the datagram's payload (or
   * its compared header, for 'header'); null where no byte was compared (timeout, overflow, timer, ack).
   */
  offset: number | null;
  detail: string;
  /** Frame lengths from the Ethernet header on (vnet header excluded); null when that side had none. */
  primaryLength: number | null;
  secondaryLength: number | null;
  /** The bytes of both frames around the first differing byte; null where no byte is known to differ. */
  window: DivergenceWindow | null;
}

/** The engine's ConnectionId as it is printed: the address family shows in the address itself. */
export interface DivergenceConnection {
  protocol: Protocol;
  /** IP addresses (MAC addresses for non-IP frames; empty when the frame carried neither). */
  src: string;
  /** TCP and UDP ports; the ICMP echo identifier in srcPort; 0 otherwise. */
  srcPort: number;
  dst: string;
  dstPort: number;
}

export interface DivergenceWindow {
  primary: FrameWindow | null;
  secondary: FrameWindow | null;
}

/** A slice of one frame; every position counts bytes from the frame's Ethernet header (vnet header excluded). */
export interface FrameWindow {
  /** Where the slice starts: the differing byte minus WINDOW_BEFORE, or 0 at the frame's start. */
  offset: number;
  /** The first differing byte; equals the frame length when this side ended there (a 'length' divergence). */
  at: number;
  /** The slice, two lowercase hex digits per byte: at most WINDOW_BEFORE + 1 + WINDOW_AFTER bytes. */
  hex: string;
}

export const WINDOW_BEFORE = 16;
export const WINDOW_AFTER = 16;

/**
 * Builds the record. `clockOriginMs` is added to the engine's time: 0 live, the first frame's capture time
 * in replay. Called once per divergence (at most one per connection between checkpoints), never per frame.
 */
export function divergenceRecord(d: Divergence, clockOriginMs = 0): DivergenceRecord {
  const { protocol, src, srcPort, dst, dstPort } = d.connection;
  return {
    time: Math.round((clockOriginMs + d.time) * 1000) / 1000,
    connection: { protocol, src, srcPort, dst, dstPort },
    reason: d.reason,
    offset: d.offset,
    detail: d.detail,
    primaryLength: frameLength(d.primary),
    secondaryLength: frameLength(d.secondary),
    window: divergenceWindow(d),
  };
}

function frameLength(packet: Packet | null): number | null {
  return packet === null ? null : packet.frame.length - packet.start;
}

const primaryInfo = new FrameInfo();
const secondaryInfo = new FrameInfo();

/** Where the first differing byte sits in each frame, from what the engine says about the divergence. */
function divergenceWindow(d: Divergence): DivergenceWindow | null {
  if (d.primary === null && d.secondary === null) return null;
  const p = d.primary === null ? null : dissected(d.primary, primaryInfo);
  const s = d.secondary === null ? null : dissected(d.secondary, secondaryInfo);
  let at: { primary: number; secondary: number } | null = null;
  if (d.reason === 'flags' && d.protocol === 'tcp') {
    // SYN, FIN or RST disagree: the byte that differs is each segment's flags byte.
    at = { primary: p === null ? -1 : p.l4Offset + 13, secondary: s === null ? -1 : s.l4Offset + 13 };
  } else if (d.offset !== null && (d.reason === 'payload' || d.reason === 'length' || d.reason === 'header')) {
    at = d.protocol === 'tcp' ? tcpDifference(p, s) : datagramPositions(d.reason, d.offset, p, s);
  }
  if (at === null) return null;
  const window = {
    primary: p === null || at.primary < 0 ? null : frameWindow(d.primary!, at.primary - d.primary!.start),
    secondary: s === null || at.secondary < 0 ? null : frameWindow(d.secondary!, at.secondary - d.secondary!.start),
  };
  return window.primary === null && window.secondary === null ? null : window;
}

function dissected(packet: Packet, info: FrameInfo): FrameInfo | null {
  return dissect(packet.frame, packet.start, packet.frame.length, info) === null ? info : null;
}

/**
 * A datagram's offset is within its payload ('payload', 'length') or within the compared header: the
 * transport header for UDP and ICMP, the IP header for other IP protocols (compare/datagram.ts, other-ip.ts).
 */
function datagramPositions(
  reason: DivergenceReason,
  offset: number,
  p: FrameInfo | null,
  s: FrameInfo | null,
): { primary: number; secondary: number } {
  const base = (info: FrameInfo | null): number => {
    if (info === null) return -1;
    if (reason !== 'header') return info.payloadOffset;
    const transport =
      info.ipProtocol === IpProtocol.UDP ||
      info.ipProtocol === IpProtocol.ICMP ||
      info.ipProtocol === IpProtocol.ICMPV6;
    return transport && !info.isFragment ? info.l4Offset : info.l3Offset;
  };
  const pBase = base(p);
  const sBase = base(s);
  return { primary: pBase < 0 ? -1 : pBase + offset, secondary: sBase < 0 ? -1 : sBase + offset };
}

/**
 * A TCP offset counts the stream from a base only the engine knows, so the byte is found again here: the two
 * payloads are laid side by side by sequence number when their ranges overlap (both sides in one sequence
 * space: the inline proxy rewrites the secondary's into the primary's), else from their first bytes (clones
 * that cut the stream alike), and the first byte that differs is the one. Null when none differs that way.
 */
function tcpDifference(p: FrameInfo | null, s: FrameInfo | null): { primary: number; secondary: number } | null {
  if (p === null || s === null) return null;
  const pSeq = (p.tcpSeq + (p.tcpFlags & TcpFlag.SYN ? 1 : 0)) >>> 0;
  const sSeq = (s.tcpSeq + (s.tcpFlags & TcpFlag.SYN ? 1 : 0)) >>> 0;
  // Signed distance in sequence space: the secondary's first payload byte relative to the primary's.
  const shift = (sSeq - pSeq) | 0;
  const overlaps = shift < p.payloadLength && -shift < s.payloadLength;
  const sFromP = overlaps ? shift : 0;
  const from = Math.max(0, sFromP);
  const to = Math.min(p.payloadLength, sFromP + s.payloadLength);
  for (let i = from; i < to; i++) {
    const pAt = p.payloadOffset + i;
    const sAt = s.payloadOffset + i - sFromP;
    if (p.buf[pAt] !== s.buf[sAt]) return { primary: pAt, secondary: sAt };
  }
  return null;
}

function frameWindow(packet: Packet, at: number): FrameWindow {
  const length = packet.frame.length - packet.start;
  const clamped = Math.min(Math.max(at, 0), length);
  const offset = Math.max(0, clamped - WINDOW_BEFORE);
  const end = Math.min(length, clamped + 1 + WINDOW_AFTER);
  const hex = packet.frame.toString('hex', packet.start + offset, packet.start + end);
  return { offset, at: clamped, hex };
}

/** The record's connection in the one printable form: e.g. "tcp 10.0.0.1:80 > 10.0.0.2:40000". */
export function formatDivergenceConnection(c: DivergenceConnection): string {
  if (c.src === '' && c.dst === '') return c.protocol;
  if (c.protocol !== 'tcp' && c.protocol !== 'udp') return `${c.protocol} ${c.src} > ${c.dst}`;
  const host = (addr: string): string => (addr.includes(':') ? `[${addr}]` : addr);
  return `${c.protocol} ${host(c.src)}:${c.srcPort} > ${host(c.dst)}:${c.dstPort}`;
}
