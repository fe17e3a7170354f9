/**
 * The internet checksum (RFC 1071) and its incremental update (RFC 1624), plus the TCP seq/ack rewrites
 * the sequence rewriter uses. Sums are kept unfolded in a JS number (53-bit integers: ~2^37 bytes before
 * overflow) and folded once at the end.
 */
import { u16, u32, put16, put32 } from './bytes.js';
import type { FrameInfo } from './frame-info.js';

/** Unfolded one's-complement sum of [start, end) as 16-bit big-endian words; an odd last byte is padded. */
export function sum16(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/** Folds the carries back into 16 bits. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value for [start, end) (with the field itself zeroed or included: see verify). */
export function internetChecksum(buf: Buffer, start: number, end: number, initial = 0): number {
  return ~fold(sum16(buf, start, end, initial)) & 0xffff;
}

/** The IPv4/IPv6 pseudo-header sum for TCP, UDP and ICMPv6 (addresses, protocol, upper-layer length). */
export function pseudoHeaderSum(
  buf: Buffer,
  srcOffset: number,
  dstOffset: number,
  addrLength: number,
  protocol: number,
  l4Length: number,
): number {
  let sum = sum16(buf, srcOffset, srcOffset + addrLength);
  sum = sum16(buf, dstOffset, dstOffset + addrLength, sum);
  // IPv4 has a 16-bit length and IPv6 a 32-bit one; both sum the same way for lengths below 2^16.
  return sum + protocol + (l4Length & 0xffff) + Math.floor(l4Length / 0x10000);
}

/** Checksum of the L4 segment [l4Offset, l4End) with the pseudo-header, the checksum field included as is. */
export function transportChecksum(
  buf: Buffer,
  srcOffset: number,
  dstOffset: number,
  addrLength: number,
  protocol: number,
  l4Offset: number,
  l4End: number,
): number {
  const pseudo = pseudoHeaderSum(buf, srcOffset, dstOffset, addrLength, protocol, l4End - l4Offset);
  return internetChecksum(buf, l4Offset, l4End, pseudo);
}

/**
 * True when the transport checksum of a dissected TCP/UDP/ICMP/ICMPv6 frame verifies (sums to zero).
 * A UDP checksum of 0 means "none" over IPv4 and counts as valid. Not on the hot path: the comparators
 * do not verify checksums (with offload the guest leaves them partial).
 */
export function transportChecksumOk(info: FrameInfo): boolean {
  const buf = info.buf;
  if (info.ipProtocol === 1 && info.ipVersion === 4) return internetChecksum(buf, info.l4Offset, info.l3End) === 0;
  if (info.ipProtocol === 17 && info.ipVersion === 4 && u16(buf, info.l4Offset + 6) === 0) return true;
  const end = info.ipProtocol === 17 ? info.payloadOffset + info.payloadLength : info.l3End;
  return (
    transportChecksum(
      buf,
      info.srcAddrOffset,
      info.dstAddrOffset,
      info.addrLength,
      info.ipProtocol,
      info.l4Offset,
      end,
    ) === 0
  );
}

/** RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changes from old to next. */
export function checksumUpdate16(checksum: number, old: number, next: number): number {
  return ~fold((~checksum & 0xffff) + (~old & 0xffff) + (next & 0xffff)) & 0xffff;
}

/** As checksumUpdate16 for a 32-bit field (two words). */
export function checksumUpdate32(checksum: number, old: number, next: number): number {
  const sum =
    (~checksum & 0xffff) + (~(old >>> 16) & 0xffff) + (~old & 0xffff) + ((next >>> 16) & 0xffff) + (next & 0xffff);
  return ~fold(sum) & 0xffff;
}

const TCP_SEQ = 4;
const TCP_ACK = 8;
const TCP_CHECKSUM = 16;

/**
 * Patches a dissected TCP frame's sequence number and fixes its checksum incrementally (no pass over the
 * payload); updates info.tcpSeq. Do not use on a frame whose checksum is left partial for offload (vnet
 * header NEEDS_CSUM): that field holds the pseudo-header sum, which seq does not enter.
 */
export function rewriteTcpSeq(buf: Buffer, info: FrameInfo, seq: number): void {
  patchTcp32(buf, info.l4Offset, TCP_SEQ, seq >>> 0);
  info.tcpSeq = seq >>> 0;
}

/** As rewriteTcpSeq for the acknowledgment number; updates info.tcpAck. */
export function rewriteTcpAck(buf: Buffer, info: FrameInfo, ack: number): void {
  patchTcp32(buf, info.l4Offset, TCP_ACK, ack >>> 0);
  info.tcpAck = ack >>> 0;
}

function patchTcp32(buf: Buffer, l4Offset: number, field: number, next: number): void {
  const old = u32(buf, l4Offset + field);
  const checksum = u16(buf, l4Offset + TCP_CHECKSUM);
  put32(buf, l4Offset + field, next);
  put16(buf, l4Offset + TCP_CHECKSUM, checksumUpdate32(checksum, old, next));
}
