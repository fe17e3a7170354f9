/**
 * What a dissected frame is to the engine: which comparator it goes to (ConnKind, or 0 when it is not
 * compared), the Protocol its connection is reported under, and the ConnectionId a divergence record names.
 */
import { ConnKind } from './conntrack.js';
import type { HeldPacket } from './held-packet.js';
import { isComparedArp, isIcmpv6Housekeeping } from './non-ip.js';
import type { ConnectionId, Protocol } from './types.js';
import { formatIp } from './wire/address.js';
import { IpProtocol, type FrameInfo } from './wire/frame-info.js';

const protocolOfKind: Record<ConnKind, Protocol> = {
  [ConnKind.TCP]: 'tcp',
  [ConnKind.DATAGRAM]: 'udp',
  [ConnKind.OTHER_IP]: 'ip',
  [ConnKind.ARP]: 'arp',
};

/** 0: not compared (released or dropped at once); otherwise the comparator to use. */
export function classify(info: FrameInfo): ConnKind | 0 {
  if (info.ipVersion === 0) return isComparedArp(info) ? ConnKind.ARP : 0;
  if (info.isFragment || info.moreFragments) return ConnKind.OTHER_IP;
  switch (info.ipProtocol) {
    case IpProtocol.TCP:
      return ConnKind.TCP;
    case IpProtocol.UDP:
      return ConnKind.DATAGRAM;
    case IpProtocol.ICMP:
      return info.ipVersion === 4 ? ConnKind.DATAGRAM : ConnKind.OTHER_IP;
    case IpProtocol.ICMPV6:
      if (info.ipVersion !== 6) return ConnKind.OTHER_IP;
      return isIcmpv6Housekeeping(info) ? 0 : ConnKind.DATAGRAM;
    default:
      return ConnKind.OTHER_IP;
  }
}

export function protocolOf(kind: ConnKind, ipProtocol: number): Protocol {
  if (kind !== ConnKind.DATAGRAM) return protocolOfKind[kind];
  if (ipProtocol === IpProtocol.ICMP) return 'icmp';
  if (ipProtocol === IpProtocol.ICMPV6) return 'icmpv6';
  return 'udp';
}

export function connectionIdOfPacket(protocol: Protocol, packet: HeldPacket): ConnectionId {
  const length = packet.addrLength;
  const printable = length === 4 || length === 16;
  return {
    protocol,
    family: packet.ipVersion === 6 ? 6 : packet.ipVersion === 4 ? 4 : 0,
    src: printable ? formatIp(packet.frame, packet.srcAddrOffset, length) : '',
    dst: printable ? formatIp(packet.frame, packet.dstAddrOffset, length) : '',
    srcPort: packet.srcPort,
    dstPort: packet.dstPort,
  };
}
