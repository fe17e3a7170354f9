/**
 * ICMPv6 (RFC 4443). Same 8-byte leading layout as ICMPv4, so the view is shared; the differences are the
 * type numbers and the checksum, which covers the IPv6 pseudo-header (filled by the builder).
 */
import { IcmpView, emitIcmpMessage, parseIcmp, type IcmpRepr } from './icmp.js';

export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

export function isIcmpv6Echo(type: number): boolean {
  return type === Icmpv6Type.ECHO_REQUEST || type === Icmpv6Type.ECHO_REPLY;
}

export class Icmpv6View extends IcmpView {}

export type Icmpv6Repr = IcmpRepr;

export function parseIcmpv6(view: Icmpv6View): Icmpv6Repr {
  return parseIcmp(view);
}

/** Writes the message with a zero checksum (it needs the pseudo-header: see transportChecksum). */
export function emitIcmpv6(repr: Icmpv6Repr, buf: Buffer, offset: number): number {
  return emitIcmpMessage(repr, buf, offset);
}
