/**
 * The contract between the wire views and everything above them: `dissect()` (compare/wire/dissect.ts)
 * fills one reusable FrameInfo per call, so the hot path allocates nothing per frame. Every offset is
 * absolute within `buf`. Fields that do not apply to a frame are 0 (or -1 where 0 is meaningful).
 */
export class FrameInfo {
  buf: Buffer = Buffer.alloc(0);
  /** Start of the Ethernet header (after any vnet header the caller skipped). */
  start = 0;
  /** One past the last byte of the frame as received (Ethernet padding included). */
  end = 0;
  /** The EtherType after any 802.1Q tags. */
  etherType = 0;
  /** The first VLAN id, or -1 when untagged. */
  vlanId = -1;
  /** 0 when the frame carries no IP, else 4 or 6. */
  ipVersion: 0 | 4 | 6 = 0;
  l3Offset = 0;
  /** IP header length including IPv4 options or IPv6 extension headers. */
  l3HeaderLength = 0;
  /** IP payload end as the IP header says (excludes Ethernet padding). */
  l3End = 0;
  /** The upper-layer protocol: IPv4 protocol or the IPv6 next header after extension headers. */
  ipProtocol = 0;
  /**
   * Offsets of the source and destination addresses; their length is 4 (IPv4) or 16 (IPv6). For ARP (with
   * ipVersion 0) the sender and target protocol addresses, of the length the ARP header declares.
   */
  srcAddrOffset = 0;
  dstAddrOffset = 0;
  addrLength = 0;
  /** True for a non-first IPv4 fragment or an IPv6 fragment with offset > 0: no L4 header is present. */
  isFragment = false;
  /** True when more fragments follow (IPv4 MF bit, IPv6 fragment header M bit): the L4 payload is partial. */
  moreFragments = false;
  l4Offset = 0;
  /**
   * Ports for TCP/UDP/SCTP/UDPLITE/DCCP, ICMP identifier in srcPort for echo, the two halves of the SPI for
   * ESP (as QEMU keys it), else 0.
   */
  srcPort = 0;
  dstPort = 0;
  /** TCP only (unsigned 32-bit). */
  tcpSeq = 0;
  tcpAck = 0;
  tcpFlags = 0;
  tcpHeaderLength = 0;
  tcpWindow = 0;
  /** ICMP/ICMPv6 type and code, -1 otherwise (type 0 is echo reply). */
  icmpType = -1;
  icmpCode = -1;
  /**
   * Transport payload: TCP data after its header (end is l3End), UDP data up to the UDP length, ICMP after
   * its 8-byte header; for other IP protocols and non-first fragments everything from l4Offset to l3End;
   * for non-IP frames everything after the EtherType (l3Offset to end).
   */
  payloadOffset = 0;
  payloadLength = 0;
}

/** Why a frame could not be dissected; stable strings so counters and logs can key on them. */
export type MalformedReason =
  | 'empty'
  | 'truncated-ethernet'
  | 'truncated-vlan'
  | 'truncated-ipv4'
  | 'bad-ipv4-ihl'
  | 'bad-ip-version'
  | 'ipv4-total-length'
  | 'truncated-ipv6'
  | 'ipv6-payload-length'
  | 'truncated-ipv6-extension'
  | 'truncated-tcp'
  | 'bad-tcp-data-offset'
  | 'truncated-udp'
  | 'bad-udp-length'
  | 'truncated-icmp'
  | 'truncated-arp'
  | 'oversized';

export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export const EtherType = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, QINQ: 0x88a8, IPV6: 0x86dd } as const;
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
  DCCP: 33,
  ESP: 50,
  AH: 51,
  SCTP: 132,
  UDPLITE: 136,
} as const;
