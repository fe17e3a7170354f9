/**
 * IP protocols without a comparator of their own (and IP fragments, which carry no usable transport header):
 * compared from the IP header to the IP payload's end, with the fields that legitimately differ between two
 * hosts sending the same datagram left out: IPv4 TTL, identification and header checksum; IPv6 hop limit and
 * flow label (Linux derives the label from a per-socket random hash). QEMU compares every byte from the MAC
 * addresses on, so a TTL or IP ID difference alone forces a checkpoint there.
 */
import type { HeldPacket } from './held-packet.js';
import { comparePayloads, lastMismatch, type DatagramComparer } from './datagram.js';

/** IPv4 header bytes that are not compared: identification (4-5), TTL (8), header checksum (10-11). */
function ipv4Ignored(i: number): boolean {
  return i === 4 || i === 5 || i === 8 || i === 10 || i === 11;
}

/** IPv6 header bytes not compared: the flow label (low nibble of byte 1, bytes 2-3) and hop limit (7). */
function ipv6Ignored(i: number): boolean {
  return i === 2 || i === 3 || i === 7;
}

function headersEqual(p: HeldPacket, s: HeldPacket): boolean {
  const length = p.l3HeaderLength;
  if (length !== s.l3HeaderLength) {
    lastMismatch.reason = 'header';
    lastMismatch.offset = 0;
    return false;
  }
  const pf = p.frame;
  const sf = s.frame;
  const v6 = p.ipVersion === 6;
  for (let i = 0; i < length; i++) {
    if (v6 ? ipv6Ignored(i) : ipv4Ignored(i)) continue;
    let a = pf[p.l3Offset + i];
    let b = sf[s.l3Offset + i];
    if (v6 && i === 1) {
      a &= 0xf0;
      b &= 0xf0;
    }
    if (a !== b) {
      lastMismatch.reason = 'header';
      lastMismatch.offset = i;
      return false;
    }
  }
  return true;
}

/** Payload (everything after the IP header and its extensions) first, then the normalised IP header. */
export const compareOtherIp: DatagramComparer = (p, s) => {
  const pStart = p.l3Offset + p.l3HeaderLength;
  const sStart = s.l3Offset + s.l3HeaderLength;
  if (!comparePayloads(p.frame, pStart, p.l3End - pStart, s.frame, sStart, s.l3End - sStart)) return false;
  return headersEqual(p, s);
};
