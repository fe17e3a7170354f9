import { describe, expect, it } from 'vitest';
import { buildEthernet, buildIpRaw, buildTcp, buildUdp } from '../../support/wire-build.js';
import { dissect, MAX_FRAME_LENGTH } from '../../../compare/wire/dissect.js';
import { FrameInfo, type MalformedReason } from '../../../compare/wire/frame-info.js';
import {
  arpRequest,
  gre4,
  hex,
  icmp4Echo,
  icmp6EchoExt,
  tcp4,
  tcp4QinqOptions,
  tcp6Vlan,
  udp4Padded,
  udp6AtomicFragment,
} from './fixtures.js';

function run(frame: Buffer, start = 0, end = frame.length): { reason: MalformedReason | null; info: FrameInfo } {
  const info = new FrameInfo();
  return { reason: dissect(frame, start, end, info), info };
}

/** The frame with its bytes at `offset` replaced by `bytes`. */
function patched(frame: Buffer, offset: number, bytes: string): Buffer {
  const copy = Buffer.from(frame);
  hex(bytes).copy(copy, offset);
  return copy;
}

describe('dissect: well-formed frames', () => {
  it('IPv4 TCP', () => {
    const { reason, info } = run(tcp4);
    expect(reason).toBeNull();
    expect(info).toMatchObject({
      start: 0,
      end: 61,
      etherType: 0x0800,
      vlanId: -1,
      ipVersion: 4,
      l3Offset: 14,
      l3HeaderLength: 20,
      l3End: 61,
      ipProtocol: 6,
      srcAddrOffset: 26,
      dstAddrOffset: 30,
      addrLength: 4,
      isFragment: false,
      l4Offset: 34,
      srcPort: 40000,
      dstPort: 80,
      tcpSeq: 0x01020304,
      tcpAck: 0xa0b0c0d0,
      tcpFlags: 0x18,
      tcpHeaderLength: 20,
      tcpWindow: 502,
      payloadOffset: 54,
      payloadLength: 7,
    });
  });

  it('Ethernet padding after the IP total length is not payload', () => {
    const { reason, info } = run(udp4Padded);
    expect(reason).toBeNull();
    expect([info.end, info.l3End, info.payloadOffset, info.payloadLength]).toEqual([60, 45, 42, 3]);
    const padded = buildTcp({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      srcPort: 1,
      dstPort: 2,
      seq: 0,
      ack: 0,
      flags: 0x10,
      padTo: 60,
    });
    const tcp = run(padded).info;
    expect([tcp.end, tcp.l3End, tcp.payloadLength]).toEqual([60, 54, 0]);
  });

  it('802.1Q and 802.1ad tags, IPv4 options', () => {
    const { reason, info } = run(tcp4QinqOptions);
    expect(reason).toBeNull();
    expect(info).toMatchObject({ vlanId: 10, etherType: 0x0800, l3Offset: 22, l3HeaderLength: 24, l4Offset: 46 });
    expect(info).toMatchObject({ srcPort: 1, dstPort: 2, tcpSeq: 3, tcpAck: 4, payloadLength: 0 });
  });

  it('IPv6 TCP behind a VLAN tag', () => {
    const { reason, info } = run(tcp6Vlan);
    expect(reason).toBeNull();
    expect(info).toMatchObject({ vlanId: 100, ipVersion: 6, l3Offset: 18, l3HeaderLength: 40, addrLength: 16 });
    expect(info).toMatchObject({
      srcAddrOffset: 26,
      dstAddrOffset: 42,
      tcpSeq: 0xfffffff0,
      tcpFlags: 0x11,
      payloadLength: 3,
    });
  });

  it('IPv6 extension headers are walked to ICMPv6', () => {
    const { reason, info } = run(icmp6EchoExt);
    expect(reason).toBeNull();
    expect(info).toMatchObject({ ipProtocol: 58, l3HeaderLength: 64, l4Offset: 78, icmpType: 128, icmpCode: 0 });
    expect(info).toMatchObject({ srcPort: 0x4242, dstPort: 0, payloadOffset: 86, payloadLength: 4 });
  });

  it('an atomic IPv6 fragment is not a fragment', () => {
    const { reason, info } = run(udp6AtomicFragment);
    expect(reason).toBeNull();
    expect(info).toMatchObject({ ipProtocol: 17, isFragment: false, moreFragments: false, srcPort: 1, dstPort: 2 });
    expect(info.payloadLength).toBe(4);
  });

  it('ICMP echo identifier goes to srcPort; other ICMP types have no ports', () => {
    expect(run(icmp4Echo).info).toMatchObject({ icmpType: 8, srcPort: 0x4242, payloadOffset: 42, payloadLength: 4 });
    const unreachable = patched(icmp4Echo, 34, '0301');
    expect(run(unreachable).info).toMatchObject({ icmpType: 3, icmpCode: 1, srcPort: 0 });
  });

  it('ARP: no IP, sender and target protocol addresses as source and destination', () => {
    const { reason, info } = run(arpRequest);
    expect(reason).toBeNull();
    expect(info).toMatchObject({
      etherType: 0x0806,
      ipVersion: 0,
      srcAddrOffset: 28,
      dstAddrOffset: 38,
      addrLength: 4,
    });
    expect([info.l3Offset, info.l3End, info.payloadOffset, info.payloadLength]).toEqual([14, 42, 14, 28]);
  });

  it('other IP protocols: the whole IP payload; ESP: the SPI as ports', () => {
    expect(run(gre4).info).toMatchObject({
      ipProtocol: 47,
      l4Offset: 34,
      payloadOffset: 34,
      payloadLength: 4,
      srcPort: 0,
    });
    const esp = buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 50, payload: hex('12345678 00000001') });
    expect(run(esp).info).toMatchObject({ ipProtocol: 50, srcPort: 0x1234, dstPort: 0x5678 });
  });

  it('IPv4 AH is walked to the transport header', () => {
    const udp = buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 7, dstPort: 9, payload: 'x' }).subarray(34);
    const ah = Buffer.concat([hex('11 04 0000 00001000 00000001'), Buffer.alloc(12), udp]);
    const { reason, info } = run(buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 51, payload: ah }));
    expect(reason).toBeNull();
    expect(info).toMatchObject({ ipProtocol: 17, l4Offset: 34 + 24, l3HeaderLength: 44, srcPort: 7, dstPort: 9 });
  });

  it('IPv4 fragments: the first has ports, later ones carry no transport header', () => {
    const first = buildIpRaw({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      protocol: 17,
      moreFragments: true,
      payload: hex('0007 0009 0100 0000 aabbccdd'),
    });
    expect(run(first)).toMatchObject({
      reason: null,
      info: { isFragment: false, moreFragments: true, srcPort: 7, dstPort: 9, payloadOffset: 42, payloadLength: 4 },
    });
    const later = buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, fragmentOffset: 185, payload: 'abc' });
    expect(run(later)).toMatchObject({
      reason: null,
      info: { isFragment: true, ipProtocol: 6, srcPort: 0, payloadOffset: 34, payloadLength: 3 },
    });
  });

  it('IPv6 later fragment', () => {
    const frame = buildIpRaw({
      src: '::1',
      dst: '::2',
      protocol: 6,
      payload: 'abcd',
      extensions: [{ type: 44, fragmentOffset: 100, moreFragments: false, ident: 5 }],
    });
    expect(run(frame)).toMatchObject({
      reason: null,
      info: { isFragment: true, ipProtocol: 6, l4Offset: 62, payloadLength: 4 },
    });
  });

  it('non-IP EtherTypes: everything after the EtherType is payload', () => {
    const frame = buildEthernet({ etherType: 0x88cc, payload: 'lldp', vlanId: 3 });
    expect(run(frame)).toMatchObject({
      reason: null,
      info: { etherType: 0x88cc, vlanId: 3, ipVersion: 0, l3Offset: 18, payloadOffset: 18, payloadLength: 4 },
    });
  });

  it('honours start and end (a vnet header before, other data after)', () => {
    const framed = Buffer.concat([Buffer.alloc(12, 0xff), tcp4, Buffer.alloc(5, 0xff)]);
    const { reason, info } = run(framed, 12, 12 + tcp4.length);
    expect(reason).toBeNull();
    expect(info).toMatchObject({ start: 12, end: 73, l3Offset: 26, l4Offset: 46, payloadOffset: 66, payloadLength: 7 });
  });

  it('clears every field of the previous frame', () => {
    const info = new FrameInfo();
    dissect(tcp6Vlan, 0, tcp6Vlan.length, info);
    expect(dissect(arpRequest, 0, arpRequest.length, info)).toBeNull();
    expect(info).toMatchObject({
      vlanId: -1,
      ipVersion: 0,
      tcpSeq: 0,
      tcpFlags: 0,
      srcPort: 0,
      l4Offset: 0,
      icmpType: -1,
    });
  });
});

describe('dissect: each malformed reason', () => {
  const cases: Array<[MalformedReason, Buffer, number?, number?]> = [
    ['empty', tcp4, 0, 0],
    ['empty', tcp4, 10, 5],
    ['empty', tcp4, tcp4.length + 1, tcp4.length + 10],
    ['oversized', Buffer.alloc(MAX_FRAME_LENGTH + 1)],
    ['truncated-ethernet', tcp4.subarray(0, 13)],
    ['truncated-vlan', tcp6Vlan.subarray(0, 17)],
    ['truncated-ipv4', tcp4.subarray(0, 33)],
    ['bad-ip-version', patched(tcp4, 14, '65')],
    ['bad-ipv4-ihl', patched(tcp4, 14, '44')],
    ['truncated-ipv4', patched(tcp4.subarray(0, 40), 14, '4f')],
    ['ipv4-total-length', patched(tcp4, 16, '0030')],
    ['ipv4-total-length', patched(tcp4, 16, '0013')],
    ['truncated-ipv6', tcp6Vlan.subarray(0, 57)],
    ['bad-ip-version', patched(tcp6Vlan, 18, '40')],
    ['ipv6-payload-length', patched(tcp6Vlan, 22, '0018')],
    ['truncated-ipv6-extension', patched(icmp6EchoExt, 18, '0007')],
    ['truncated-tcp', patched(tcp4.subarray(0, 53), 16, '0027')],
    ['bad-tcp-data-offset', patched(tcp4, 46, '40')],
    ['bad-tcp-data-offset', patched(tcp4, 46, '70')],
    ['truncated-udp', patched(udp4Padded.subarray(0, 41), 16, '001b')],
    ['bad-udp-length', patched(udp4Padded, 38, '000c')],
    ['bad-udp-length', patched(udp4Padded, 38, '0007')],
    ['truncated-icmp', patched(icmp4Echo.subarray(0, 41), 16, '001b')],
    ['truncated-arp', arpRequest.subarray(0, 41)],
    ['truncated-arp', arpRequest.subarray(0, 21)],
  ];
  it.each(cases)('%s', (expected, frame, start, end) => {
    expect(run(frame, start ?? 0, end ?? frame.length).reason).toBe(expected);
  });

  it('leaves the layers it did parse in place, for labelling', () => {
    const { info } = run(patched(tcp4, 46, '40'));
    expect(info).toMatchObject({ etherType: 0x0800, ipVersion: 4, ipProtocol: 6 });
  });

  it('ICMP numbers in the wrong IP family are just protocols', () => {
    const frame = buildIpRaw({ src: '::1', dst: '::2', protocol: 1, payload: 'ab' });
    expect(run(frame)).toMatchObject({ reason: null, info: { ipProtocol: 1, icmpType: -1, payloadLength: 2 } });
  });
});
