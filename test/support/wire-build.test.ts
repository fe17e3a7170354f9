import { describe, expect, it } from 'vitest';
import { buildArp, buildEthernet, buildIcmp, buildIcmpv6, buildIpRaw, buildTcp, buildUdp } from './wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { encodeTcpOptions } from '../../compare/wire/tcp.js';
import * as fx from '../compare/wire/fixtures.js';

const v4 = { src: '192.0.2.1', dst: '192.0.2.2' };
const v6 = { src: '2001:db8::1', dst: '2001:db8::2' };

// The fixtures' checksums were verified by tshark; building the same frames must give the same bytes.
describe('builders reproduce the verified fixtures', () => {
  it('TCP over IPv4', () => {
    const frame = buildTcp({
      ...v4,
      srcPort: 40000,
      dstPort: 80,
      seq: 0x01020304,
      ack: 0xa0b0c0d0,
      flags: TcpFlag.PSH | TcpFlag.ACK,
      window: 502,
      payload: 'GET /\r\n',
      ipId: 0x1234,
      dontFragment: true,
    });
    expect(frame.toString('hex')).toBe(fx.tcp4.toString('hex'));
  });

  it('TCP SYN with options', () => {
    const options = encodeTcpOptions([
      { kind: 2, mss: 1460 },
      { kind: 4 },
      { kind: 8, value: 1, echo: 0 },
      { kind: 3, shift: 7 },
    ]);
    const frame = buildTcp({ ...v4, srcPort: 40000, dstPort: 80, seq: 100, ack: 0, flags: TcpFlag.SYN, options });
    expect(frame.toString('hex')).toBe(fx.tcp4Syn.toString('hex'));
  });

  it('TCP over IPv6 with a VLAN tag', () => {
    const frame = buildTcp({
      ...v6,
      srcPort: 443,
      dstPort: 50000,
      seq: 0xfffffff0,
      ack: 5,
      flags: TcpFlag.FIN | TcpFlag.ACK,
      payload: 'bye',
      vlanId: 100,
    });
    expect(frame.toString('hex')).toBe(fx.tcp6Vlan.toString('hex'));
  });

  it('TCP with stacked tags and IPv4 options', () => {
    const frame = buildTcp({
      ...v4,
      srcPort: 1,
      dstPort: 2,
      seq: 3,
      ack: 4,
      flags: TcpFlag.ACK,
      ipOptions: Buffer.from([1, 1, 1, 0]),
      serviceVlanId: 10,
      vlanId: 20,
    });
    expect(frame.toString('hex')).toBe(fx.tcp4QinqOptions.toString('hex'));
  });

  it('UDP, padded and over IPv6', () => {
    expect(buildUdp({ ...v4, srcPort: 5353, dstPort: 53, payload: 'abc', padTo: 60 })).toEqual(fx.udp4Padded);
    expect(buildUdp({ src: '2001:db8::1', dst: 'ff02::fb', srcPort: 5353, dstPort: 5353, payload: 'q' })).toEqual(
      fx.udp6,
    );
    expect(
      buildUdp({
        ...v6,
        srcPort: 1,
        dstPort: 2,
        payload: 'frag',
        extensions: [{ type: 44, fragmentOffset: 0, moreFragments: false, ident: 99 }],
      }),
    ).toEqual(fx.udp6AtomicFragment);
  });

  it('ICMP and ICMPv6 echo', () => {
    expect(buildIcmp({ ...v4, id: 0x4242, seq: 7, payload: 'ping' })).toEqual(fx.icmp4Echo);
    const ext = [
      { type: 0 as const, data: Buffer.alloc(6) },
      { type: 60 as const, data: Buffer.alloc(14) },
    ];
    expect(
      buildIcmpv6({ src: 'fe80::1', dst: 'fe80::2', id: 0x4242, seq: 7, payload: 'ping', extensions: ext }),
    ).toEqual(fx.icmp6EchoExt);
  });

  it('ARP and raw IP', () => {
    expect(buildArp({ senderIp: '192.0.2.1', targetIp: '192.0.2.2' })).toEqual(fx.arpRequest);
    expect(buildIpRaw({ ...v4, protocol: 47, payload: Buffer.from('00000800', 'hex') })).toEqual(fx.gre4);
  });
});

describe('builders', () => {
  it('write an explicit (bad) checksum when asked', () => {
    const frame = buildTcp({ ...v4, srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0, checksum: 0xbeef });
    expect(frame.readUInt16BE(34 + 16)).toBe(0xbeef);
    expect(buildIcmp({ ...v4, checksum: 0x1234 }).readUInt16BE(36)).toBe(0x1234);
  });

  it('build an ARP reply to the given MAC', () => {
    const frame = buildArp({ operation: 2, senderIp: '10.0.0.2', targetIp: '10.0.0.1', dstMac: '02:00:00:00:00:09' });
    expect(frame.subarray(0, 6).toString('hex')).toBe('020000000009');
    expect(frame.readUInt16BE(20)).toBe(2);
    expect(frame.subarray(32, 38).toString('hex')).toBe('020000000009');
  });

  it('build an arbitrary EtherType', () => {
    const frame = buildEthernet({
      etherType: 0x88b5,
      payload: 'hi',
      srcMac: '02:00:00:00:00:01',
      dstMac: '02:00:00:00:00:02',
    });
    expect(frame.toString('hex')).toBe('020000000002020000000001' + '88b5' + '6869');
  });

  it('refuse mixed families and the wrong ICMP builder', () => {
    expect(() => buildUdp({ src: '10.0.0.1', dst: '::1', srcPort: 1, dstPort: 2 })).toThrow(
      /both be IPv4 or both IPv6/,
    );
    expect(() => buildIcmp({ src: '::1', dst: '::2' })).toThrow(/buildIcmpv6/);
    expect(() => buildIcmpv6({ src: '10.0.0.1', dst: '10.0.0.2' })).toThrow(/buildIcmp/);
  });
});
