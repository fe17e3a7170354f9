/**
 * Frame builders for tests, benches and examples: plain specs in, full Ethernet frames (offset 0) out,
 * with correct IP header and transport checksums. IPv4 or IPv6 is chosen from the address form.
 * Builders allocate freely and throw on bad specs, so they stay out of compare/, proxy/ and src/ (the lint
 * keeps those from importing test/).
 */
import { ipFamily } from '../../compare/wire/address.js';
import { emitArp } from '../../compare/wire/arp.js';
import { put16 } from '../../compare/wire/bytes.js';
import { transportChecksum } from '../../compare/wire/checksum.js';
import { ETHERNET_HEADER_LENGTH, emitEthernet } from '../../compare/wire/ethernet.js';
import { EtherType, IpProtocol } from '../../compare/wire/frame-info.js';
import { emitIcmp, emitIcmpMessage, IcmpType } from '../../compare/wire/icmp.js';
import { Icmpv6Type } from '../../compare/wire/icmpv6.js';
import { emitIpv4, ipv4HeaderLength } from '../../compare/wire/ipv4.js';
import {
  emitIpv6,
  emitIpv6Extensions,
  IPV6_HEADER_LENGTH,
  ipv6ExtensionLength,
  type Ipv6ExtensionRepr,
} from '../../compare/wire/ipv6.js';
import { emitTcp, tcpHeaderLength } from '../../compare/wire/tcp.js';
import { emitUdp } from '../../compare/wire/udp.js';
import { emitVlan, VLAN_TAG_LENGTH } from '../../compare/wire/vlan.js';

export const DEFAULT_SRC_MAC = '52:54:00:00:00:01';
export const DEFAULT_DST_MAC = '52:54:00:00:00:02';

export interface EthernetSpec {
  srcMac?: string;
  dstMac?: string;
  /** An 802.1Q tag (TPID 0x8100) with this VLAN id. */
  vlanId?: number;
  vlanPriority?: number;
  /** An outer 802.1ad service tag (TPID 0x88a8) in front of the 802.1Q tag. */
  serviceVlanId?: number;
  /** Zero-pad the frame to at least this many bytes (60 is the Ethernet minimum without FCS). */
  padTo?: number;
}

export interface IpSpec extends EthernetSpec {
  /** IPv4 dotted or IPv6 text; both must be the same family. */
  src: string;
  dst: string;
  /** IPv4 TTL or IPv6 hop limit (64). */
  ttl?: number;
  /** IPv4 identification (0). */
  ipId?: number;
  /** IPv4 DSCP/ECN byte or IPv6 traffic class (0). */
  tos?: number;
  flowLabel?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** IPv4 fragment offset in 8-byte units. */
  fragmentOffset?: number;
  /** IPv4 option bytes (padded to a multiple of 4). */
  ipOptions?: Buffer;
  /** IPv6 extension headers in order, before the transport header. */
  extensions?: Ipv6ExtensionRepr[];
}

export type Payload = Buffer | string;

export interface TcpSpec extends IpSpec {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** TcpFlag bits. */
  flags: number;
  window?: number;
  urgent?: number;
  payload?: Payload;
  /** Raw option bytes (see encodeTcpOptions in tcp.ts), padded with END to a multiple of 4. */
  options?: Buffer;
  /** Write this checksum instead of the correct one (to build a bad frame). */
  checksum?: number;
}

export interface UdpSpec extends IpSpec {
  srcPort: number;
  dstPort: number;
  payload?: Payload;
  checksum?: number;
}

export interface IcmpSpec extends IpSpec {
  /** Echo request (8, or 128 for ICMPv6) unless given. */
  type?: number;
  code?: number;
  /** Echo identifier and sequence (the type-specific word for other types). */
  id?: number;
  seq?: number;
  payload?: Payload;
  checksum?: number;
}

export interface IpRawSpec extends IpSpec {
  /** Any IP protocol number; the payload is carried as is (no checksum is computed). */
  protocol: number;
  payload?: Payload;
}

export interface ArpSpec extends EthernetSpec {
  /** 1 request (default), 2 reply. */
  operation?: number;
  senderMac?: string;
  senderIp: string;
  /** 00:00:00:00:00:00 for a request unless given. */
  targetMac?: string;
  targetIp: string;
}

export interface RawEthernetSpec extends EthernetSpec {
  etherType: number;
  payload?: Payload;
}

function bytes(payload: Payload | undefined): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
}

/** Ethernet header and tags in front of `body`; pads to padTo. */
export function buildEthernet(spec: RawEthernetSpec): Buffer {
  return frame(spec, spec.etherType, bytes(spec.payload));
}

function frame(spec: EthernetSpec, etherType: number, body: Buffer): Buffer {
  const tags = (spec.vlanId !== undefined ? 1 : 0) + (spec.serviceVlanId !== undefined ? 1 : 0);
  const headerLength = ETHERNET_HEADER_LENGTH + tags * VLAN_TAG_LENGTH;
  const length = Math.max(headerLength + body.length, spec.padTo ?? 0);
  const buf = Buffer.alloc(length);
  const tpids: number[] = [];
  if (spec.serviceVlanId !== undefined) tpids.push(EtherType.QINQ);
  if (spec.vlanId !== undefined) tpids.push(EtherType.VLAN);
  const vids = [spec.serviceVlanId, spec.vlanId].filter((v): v is number => v !== undefined);
  emitEthernet(
    { dst: spec.dstMac ?? DEFAULT_DST_MAC, src: spec.srcMac ?? DEFAULT_SRC_MAC, etherType: tpids[0] ?? etherType },
    buf,
    0,
  );
  let offset = ETHERNET_HEADER_LENGTH;
  vids.forEach((vlanId, i) => {
    const inner = tpids[i + 1] ?? etherType;
    emitVlan({ priority: spec.vlanPriority ?? 0, dropEligible: false, vlanId, etherType: inner }, buf, offset);
    offset += VLAN_TAG_LENGTH;
  });
  body.copy(buf, offset);
  return buf;
}

/**
 * An IP packet around an L4 segment; `checksumField` (relative to the segment) is filled with the
 * pseudo-header checksum unless it is null or `override` is given.
 */
function ipFrame(
  spec: IpSpec,
  protocol: number,
  segment: Buffer,
  checksumField: number | null,
  override: number | undefined,
  zeroMeansNone = false,
): Buffer {
  const family = ipFamily(spec.src);
  if (family === 0 || ipFamily(spec.dst) !== family) {
    throw new Error(`src and dst must both be IPv4 or both IPv6: ${spec.src} -> ${spec.dst}`);
  }
  let packet: Buffer;
  let l4Offset: number;
  if (family === 4) {
    if (spec.extensions?.length) throw new Error('IPv6 extension headers on an IPv4 packet');
    const options = spec.ipOptions ?? Buffer.alloc(0);
    l4Offset = ipv4HeaderLength({ options });
    packet = Buffer.alloc(l4Offset + segment.length);
    emitIpv4(
      {
        src: spec.src,
        dst: spec.dst,
        protocol,
        ttl: spec.ttl ?? 64,
        ident: spec.ipId ?? 0,
        dscp: (spec.tos ?? 0) >>> 2,
        ecn: (spec.tos ?? 0) & 3,
        dontFragment: spec.dontFragment ?? false,
        moreFragments: spec.moreFragments ?? false,
        fragmentOffset: spec.fragmentOffset ?? 0,
        options,
        payloadLength: segment.length,
      },
      packet,
      0,
    );
  } else {
    const exts = spec.extensions ?? [];
    const extLength = exts.reduce((sum, ext) => sum + ipv6ExtensionLength(ext), 0);
    l4Offset = IPV6_HEADER_LENGTH + extLength;
    packet = Buffer.alloc(l4Offset + segment.length);
    emitIpv6(
      {
        src: spec.src,
        dst: spec.dst,
        nextHeader: exts.length > 0 ? exts[0].type : protocol,
        hopLimit: spec.ttl ?? 64,
        trafficClass: spec.tos ?? 0,
        flowLabel: spec.flowLabel ?? 0,
        payloadLength: extLength + segment.length,
      },
      packet,
      0,
    );
    emitIpv6Extensions(exts, protocol, packet, IPV6_HEADER_LENGTH);
  }
  segment.copy(packet, l4Offset);
  if (checksumField !== null) {
    let checksum = override;
    if (checksum === undefined) {
      const addrLength = family === 4 ? 4 : 16;
      const srcOffset = family === 4 ? 12 : 8;
      checksum = transportChecksum(
        packet,
        srcOffset,
        srcOffset + addrLength,
        addrLength,
        protocol,
        l4Offset,
        packet.length,
      );
      // UDP sends a computed 0 as all ones: 0 means "no checksum".
      if (zeroMeansNone && checksum === 0) checksum = 0xffff;
    }
    put16(packet, l4Offset + checksumField, checksum);
  }
  return frame(spec, family === 4 ? EtherType.IPV4 : EtherType.IPV6, packet);
}

export function buildTcp(spec: TcpSpec): Buffer {
  const options = spec.options ?? Buffer.alloc(0);
  const payload = bytes(spec.payload);
  const segment = Buffer.alloc(tcpHeaderLength({ options }) + payload.length);
  emitTcp(
    {
      srcPort: spec.srcPort,
      dstPort: spec.dstPort,
      seq: spec.seq,
      ack: spec.ack,
      flags: spec.flags,
      window: spec.window ?? 65535,
      urgent: spec.urgent ?? 0,
      options,
      payload,
    },
    segment,
    0,
  );
  return ipFrame(spec, IpProtocol.TCP, segment, 16, spec.checksum);
}

export function buildUdp(spec: UdpSpec): Buffer {
  const payload = bytes(spec.payload);
  const segment = Buffer.alloc(8 + payload.length);
  emitUdp({ srcPort: spec.srcPort, dstPort: spec.dstPort, payload }, segment, 0);
  return ipFrame(spec, IpProtocol.UDP, segment, 6, spec.checksum, true);
}

/** The spec's ICMP message (ICMPv4 and ICMPv6 share the layout), `echoRequest` unless it names a type. */
function icmpSegment(spec: IcmpSpec, echoRequest: number, emit: typeof emitIcmp): Buffer {
  const body = bytes(spec.payload);
  const segment = Buffer.alloc(8 + body.length);
  const repr = {
    type: spec.type ?? echoRequest,
    code: spec.code ?? 0,
    ident: spec.id ?? 0,
    sequence: spec.seq ?? 0,
    body,
  };
  emit(repr, segment, 0);
  return segment;
}

/** ICMPv4 (echo request by default); with IPv6 addresses, use buildIcmpv6. */
export function buildIcmp(spec: IcmpSpec): Buffer {
  if (ipFamily(spec.src) !== 4) throw new Error('buildIcmp takes IPv4 addresses: use buildIcmpv6 for IPv6');
  // ICMPv4's checksum covers the message alone, so emitIcmp computes it.
  const segment = icmpSegment(spec, IcmpType.ECHO_REQUEST, emitIcmp);
  if (spec.checksum !== undefined) put16(segment, 2, spec.checksum);
  return ipFrame(spec, IpProtocol.ICMP, segment, null, undefined);
}

/** ICMPv6 (echo request by default), checksum over the IPv6 pseudo-header. */
export function buildIcmpv6(spec: IcmpSpec): Buffer {
  if (ipFamily(spec.src) !== 6) throw new Error('buildIcmpv6 takes IPv6 addresses: use buildIcmp for IPv4');
  const segment = icmpSegment(spec, Icmpv6Type.ECHO_REQUEST, emitIcmpMessage);
  return ipFrame(spec, IpProtocol.ICMPV6, segment, 2, spec.checksum);
}

/** An IP packet of any protocol with the payload carried as is. */
export function buildIpRaw(spec: IpRawSpec): Buffer {
  return ipFrame(spec, spec.protocol, bytes(spec.payload), null, undefined);
}

/** Ethernet/IPv4 ARP; a request goes to the broadcast MAC unless dstMac is given. */
export function buildArp(spec: ArpSpec): Buffer {
  const operation = spec.operation ?? 1;
  const senderMac = spec.senderMac ?? spec.srcMac ?? DEFAULT_SRC_MAC;
  const body = Buffer.alloc(28);
  emitArp(
    {
      operation,
      senderMac,
      senderIp: spec.senderIp,
      targetMac: spec.targetMac ?? (operation === 1 ? '00:00:00:00:00:00' : (spec.dstMac ?? DEFAULT_DST_MAC)),
      targetIp: spec.targetIp,
    },
    body,
    0,
  );
  const dstMac = spec.dstMac ?? (operation === 1 ? 'ff:ff:ff:ff:ff:ff' : DEFAULT_DST_MAC);
  return frame({ ...spec, srcMac: senderMac, dstMac }, EtherType.ARP, body);
}
