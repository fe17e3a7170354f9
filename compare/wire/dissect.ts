/**
 * The dissector: one pass from the Ethernet header to the transport payload, filling a caller-owned
 * FrameInfo. Hot path: module-level views are reset onto each frame, so a call allocates nothing, builds
 * no strings and never throws (every read is behind a view's checkLength).
 */
import { ArpView } from './arp.js';
import { EthernetView } from './ethernet.js';
import { EtherType, IpProtocol, type FrameInfo, type MalformedReason } from './frame-info.js';
import { IcmpView, isIcmpEcho } from './icmp.js';
import { isIcmpv6Echo } from './icmpv6.js';
import { Ipv4View } from './ipv4.js';
import { ExtensionWalk, Ipv6View } from './ipv6.js';
import { TcpView } from './tcp.js';
import { UdpView } from './udp.js';
import { isVlanTpid, VlanView } from './vlan.js';
import { u16 } from './bytes.js';

/** The largest frame accepted: QEMU's chardev framing limit (NET_BUFSIZE, 4096 + 65536). */
export const MAX_FRAME_LENGTH = 69632;

// Shared by every call: dissect() runs to completion synchronously, so nothing else can observe them.
const ethernet = new EthernetView();
const vlan = new VlanView();
const ipv4 = new Ipv4View();
const ipv6 = new Ipv6View();
const extensions = new ExtensionWalk();
const tcp = new TcpView();
const udp = new UdpView();
const icmp = new IcmpView();
const arp = new ArpView();

/**
 * Dissects the frame in buf[start, end) into `out`; returns null on success or why the frame is malformed.
 * On failure, `out` holds what was parsed before the failing layer (etherType, ipVersion, ...), which is
 * enough to label a counter; offsets of later layers are 0. An `end` beyond the buffer is clamped.
 */
export function dissect(buf: Buffer, start: number, end: number, out: FrameInfo): MalformedReason | null {
  if (end > buf.length) end = buf.length;
  clear(out, buf, start, end);
  if (!(start >= 0) || !(end > start)) return 'empty';
  if (end - start > MAX_FRAME_LENGTH) return 'oversized';

  let reason = ethernet.reset(buf, start, end - start).checkLength();
  if (reason !== null) return reason;
  let etherType = ethernet.etherType;
  let offset = ethernet.payloadOffset;
  while (isVlanTpid(etherType)) {
    reason = vlan.reset(buf, offset, end - offset).checkLength();
    if (reason !== null) return reason;
    if (out.vlanId < 0) out.vlanId = vlan.vlanId;
    etherType = vlan.etherType;
    offset = vlan.payloadOffset;
  }
  out.etherType = etherType;
  out.l3Offset = offset;
  out.l3End = end;
  out.payloadOffset = offset;
  out.payloadLength = end - offset;

  if (etherType === EtherType.IPV4) return dissectIpv4(buf, offset, end, out);
  if (etherType === EtherType.IPV6) return dissectIpv6(buf, offset, end, out);
  if (etherType === EtherType.ARP) return dissectArp(buf, offset, end, out);
  return null;
}

function dissectIpv4(buf: Buffer, offset: number, end: number, out: FrameInfo): MalformedReason | null {
  const reason = ipv4.reset(buf, offset, end - offset).checkLength();
  if (reason !== null) return reason;
  out.ipVersion = 4;
  out.srcAddrOffset = ipv4.srcOffset;
  out.dstAddrOffset = ipv4.dstOffset;
  out.addrLength = 4;
  // The datagram ends where the IP header says; Ethernet padding after it is not payload.
  out.l3End = offset + ipv4.totalLength;
  out.isFragment = ipv4.fragmentOffset !== 0;
  out.moreFragments = ipv4.moreFragments;
  return upperLayer(buf, ipv4.payloadOffset, ipv4.protocol, true, out);
}

function dissectIpv6(buf: Buffer, offset: number, end: number, out: FrameInfo): MalformedReason | null {
  const reason = ipv6.reset(buf, offset, end - offset).checkLength();
  if (reason !== null) return reason;
  out.ipVersion = 6;
  out.srcAddrOffset = ipv6.srcOffset;
  out.dstAddrOffset = ipv6.dstOffset;
  out.addrLength = 16;
  out.l3End = ipv6.payloadOffset + ipv6.payloadLength;
  return upperLayer(buf, ipv6.payloadOffset, ipv6.nextHeader, false, out);
}

/** Walks AH (and, for IPv6, the other extension headers), then dissects the transport header. */
function upperLayer(
  buf: Buffer,
  offset: number,
  protocol: number,
  isIpv4: boolean,
  out: FrameInfo,
): MalformedReason | null {
  const l3End = out.l3End;
  out.ipProtocol = protocol;
  out.l4Offset = offset;
  out.l3HeaderLength = offset - out.l3Offset;
  out.payloadOffset = offset;
  out.payloadLength = l3End - offset;
  if (out.isFragment) return null;

  const reason = extensions.walk(buf, offset, l3End, protocol, isIpv4);
  if (reason !== null) return reason;
  protocol = extensions.protocol;
  offset = extensions.offset;
  if (extensions.isFragment) out.isFragment = true;
  if (extensions.moreFragments) out.moreFragments = true;
  out.ipProtocol = protocol;
  out.l4Offset = offset;
  out.l3HeaderLength = offset - out.l3Offset;
  out.payloadOffset = offset;
  out.payloadLength = l3End - offset;
  if (out.isFragment) return null;
  return transport(buf, offset, l3End, protocol, isIpv4, out);
}

function transport(
  buf: Buffer,
  offset: number,
  l3End: number,
  protocol: number,
  isIpv4: boolean,
  out: FrameInfo,
): MalformedReason | null {
  const available = l3End - offset;
  switch (protocol) {
    case IpProtocol.TCP: {
      const reason = tcp.reset(buf, offset, available).checkLength();
      if (reason !== null) return reason;
      out.srcPort = tcp.srcPort;
      out.dstPort = tcp.dstPort;
      out.tcpSeq = tcp.seq;
      out.tcpAck = tcp.ack;
      out.tcpFlags = tcp.flags;
      out.tcpWindow = tcp.window;
      out.tcpHeaderLength = tcp.headerLength;
      out.payloadOffset = tcp.payloadOffset;
      out.payloadLength = l3End - out.payloadOffset;
      return null;
    }
    case IpProtocol.UDP: {
      udp.reset(buf, offset, available);
      if (out.moreFragments) {
        // A first fragment: the UDP length covers the whole datagram, most of which is still to come.
        if (available < 8) return 'truncated-udp';
        if (udp.datagramLength < 8) return 'bad-udp-length';
        out.payloadLength = l3End - udp.payloadOffset;
      } else {
        const reason = udp.checkLength();
        if (reason !== null) return reason;
        out.payloadLength = udp.datagramLength - 8;
      }
      out.srcPort = udp.srcPort;
      out.dstPort = udp.dstPort;
      out.payloadOffset = udp.payloadOffset;
      return null;
    }
    case IpProtocol.ICMP:
    case IpProtocol.ICMPV6: {
      // Protocol 1 inside IPv6 (or 58 inside IPv4) is not ICMP of that family: left as an opaque protocol.
      if ((protocol === IpProtocol.ICMP) !== isIpv4) return null;
      const reason = icmp.reset(buf, offset, available).checkLength();
      if (reason !== null) return reason;
      const type = icmp.type;
      out.icmpType = type;
      out.icmpCode = icmp.code;
      if (isIpv4 ? isIcmpEcho(type) : isIcmpv6Echo(type)) out.srcPort = icmp.ident;
      out.payloadOffset = icmp.bodyOffset;
      out.payloadLength = l3End - out.payloadOffset;
      return null;
    }
    case IpProtocol.UDPLITE:
    case IpProtocol.SCTP:
    case IpProtocol.DCCP:
    case IpProtocol.ESP:
      // Ports (for ESP the SPI) are the first 32 bits; a segment too short to hold them keeps ports 0.
      if (available >= 4) {
        out.srcPort = u16(buf, offset);
        out.dstPort = u16(buf, offset + 2);
      }
      return null;
    default:
      return null;
  }
}

function dissectArp(buf: Buffer, offset: number, end: number, out: FrameInfo): MalformedReason | null {
  const reason = arp.reset(buf, offset, end - offset).checkLength();
  if (reason !== null) return reason;
  out.l3End = arp.targetProtocolOffset + arp.protocolLength;
  out.payloadLength = out.l3End - offset;
  // Sender and target protocol addresses stand in for source and destination (ipVersion stays 0).
  out.srcAddrOffset = arp.senderProtocolOffset;
  out.dstAddrOffset = arp.targetProtocolOffset;
  out.addrLength = arp.protocolLength;
  return null;
}

function clear(out: FrameInfo, buf: Buffer, start: number, end: number): void {
  out.buf = buf;
  out.start = start;
  out.end = end;
  out.etherType = 0;
  out.vlanId = -1;
  out.ipVersion = 0;
  out.l3Offset = 0;
  out.l3HeaderLength = 0;
  out.l3End = 0;
  out.ipProtocol = 0;
  out.srcAddrOffset = 0;
  out.dstAddrOffset = 0;
  out.addrLength = 0;
  out.isFragment = false;
  out.moreFragments = false;
  out.l4Offset = 0;
  out.srcPort = 0;
  out.dstPort = 0;
  out.tcpSeq = 0;
  out.tcpAck = 0;
  out.tcpFlags = 0;
  out.tcpHeaderLength = 0;
  out.tcpWindow = 0;
  out.icmpType = -1;
  out.icmpCode = -1;
  out.payloadOffset = 0;
  out.payloadLength = 0;
}

/**
 * Dissects a whole frame (from byte 0) into `out`: `out` when it dissects, null when it is malformed. Also how
 * a frame held for a while is read again, once `out` has moved on to other frames.
 */
export function dissectFrame(frame: Buffer, out: FrameInfo): FrameInfo | null {
  return dissect(frame, 0, frame.length, out) === null ? out : null;
}
