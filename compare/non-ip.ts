/**
 * Frames that are not IP, and IP housekeeping that is driven by timers rather than by client input.
 *
 * Policy:
 * - ARP replies (Ethernet/IPv4, not gratuitous) answer a request both VMs received, so they are compared
 *   like datagrams: the 28-byte ARP body must be equal (Ethernet padding ignored), keyed by the sender and
 *   target protocol addresses.
 * - Everything else that is not IP (ARP requests, gratuitous ARP, LLDP, other EtherTypes) and ICMPv6
 *   neighbour discovery and multicast listener messages: each VM sends these on its own timers, so comparing
 *   them would only produce false divergences. The primary's are released at once and the secondary's
 *   dropped at once (both appear in the Decision, so they are counted). This matches QEMU for non-IP frames
 *   (it releases every unsupported primary frame and drops the secondary's); QEMU does not look at IPv6.
 */
import { comparePayloads, type DatagramComparer } from './datagram.js';
import { EtherType, IpProtocol, type FrameInfo } from './wire/frame-info.js';

const ARP_BODY_LENGTH = 28;
const ARP_REPLY = 2;

/** True for an Ethernet/IPv4 ARP reply whose sender and target protocol addresses differ. */
export function isComparedArp(info: FrameInfo): boolean {
  if (info.etherType !== EtherType.ARP || info.l3End - info.l3Offset < ARP_BODY_LENGTH) return false;
  const buf = info.buf;
  const at = info.l3Offset;
  const ethernetIpv4 = buf[at + 4] === 6 && buf[at + 5] === 4;
  const reply = ((buf[at + 6] << 8) | buf[at + 7]) === ARP_REPLY;
  if (!ethernetIpv4 || !reply) return false;
  for (let i = 0; i < 4; i++) if (buf[info.srcAddrOffset + i] !== buf[info.dstAddrOffset + i]) return true;
  return false;
}

/** ICMPv6 types sent on the host's own timers: MLD (130-132, 143) and neighbour discovery (133-137). */
export function isIcmpv6Housekeeping(info: FrameInfo): boolean {
  if (info.ipProtocol !== IpProtocol.ICMPV6 || info.ipVersion !== 6) return false;
  const type = info.icmpType;
  return (type >= 130 && type <= 137) || type === 143;
}

export const compareArp: DatagramComparer = (p, s) =>
  comparePayloads(p.frame, p.l3Offset, ARP_BODY_LENGTH, s.frame, s.l3Offset, ARP_BODY_LENGTH);
