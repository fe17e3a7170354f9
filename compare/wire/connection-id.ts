/**
 * The printable side of a dissected frame: its Protocol label (cheap, no allocation) and its ConnectionId
 * (builds strings: call it only when a divergence or a log line needs one, never per packet).
 */
import type { ConnectionId, Protocol } from '../types.js';
import { formatIp } from './address.js';
import { EtherType, IpProtocol, type FrameInfo } from './frame-info.js';

/** The comparator family of a frame. A non-first fragment carries no transport header, so it is 'ip'. */
export function protocolOf(info: FrameInfo): Protocol {
  if (info.ipVersion === 0) return info.etherType === EtherType.ARP ? 'arp' : 'other';
  if (info.isFragment) return 'ip';
  switch (info.ipProtocol) {
    case IpProtocol.TCP:
      return 'tcp';
    case IpProtocol.UDP:
      return 'udp';
    case IpProtocol.ICMP:
      return info.ipVersion === 4 ? 'icmp' : 'ip';
    case IpProtocol.ICMPV6:
      return info.ipVersion === 6 ? 'icmpv6' : 'ip';
    default:
      return 'ip';
  }
}

/**
 * The connection a frame belongs to, addresses as text (IPv4 dotted, IPv6 RFC 5952). ARP reports its
 * sender and target protocol addresses with family 0; other non-IP frames report empty addresses.
 */
export function connectionIdOf(info: FrameInfo): ConnectionId {
  const protocol = protocolOf(info);
  const hasAddresses = info.addrLength === 4 || info.addrLength === 16;
  return {
    protocol,
    family: info.ipVersion,
    src: hasAddresses ? formatIp(info.buf, info.srcAddrOffset, info.addrLength) : '',
    dst: hasAddresses ? formatIp(info.buf, info.dstAddrOffset, info.addrLength) : '',
    srcPort: info.srcPort,
    dstPort: info.dstPort,
  };
}
