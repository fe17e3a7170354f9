import { describe, expect, it } from 'vitest';
import { emitIcmp, IcmpView, isIcmpEcho, parseIcmp } from '../../../compare/wire/icmp.js';
import { emitIcmpv6, Icmpv6View, isIcmpv6Echo, parseIcmpv6 } from '../../../compare/wire/icmpv6.js';
import { emitUdp, parseUdp, UdpView } from '../../../compare/wire/udp.js';
import { icmp4Echo, icmp6EchoExt, udp4Padded, udp6 } from './fixtures.js';

describe('udp', () => {
  it('deconstructs a datagram and ignores Ethernet padding after it', () => {
    const view = new UdpView().reset(udp4Padded, 34, 11);
    expect(view.checkLength()).toBeNull();
    expect([view.srcPort, view.dstPort, view.datagramLength, view.checksum]).toEqual([5353, 53, 11, 0xa253]);
    expect(parseUdp(view).payload.toString()).toBe('abc');
  });

  it('parses and emits the IPv6 fixture', () => {
    const repr = parseUdp(new UdpView(udp6, 54, 9));
    expect(repr).toEqual({ srcPort: 5353, dstPort: 5353, payload: Buffer.from('q'), checksum: 0x3752 });
    const out = Buffer.alloc(9);
    expect(emitUdp(repr, out, 0)).toBe(9);
    const expected = Buffer.from(udp6.subarray(54));
    expected.writeUInt16BE(0, 6);
    expect(out).toEqual(expected);
  });

  it('reports a short header and a bad length', () => {
    expect(new UdpView(udp6, 54, 7).checkLength()).toBe('truncated-udp');
    const bad = Buffer.from(udp6.subarray(54));
    bad.writeUInt16BE(10, 4);
    expect(new UdpView(bad, 0, 9).checkLength()).toBe('bad-udp-length');
    bad.writeUInt16BE(7, 4);
    expect(new UdpView(bad, 0, 9).checkLength()).toBe('bad-udp-length');
    bad.writeUInt16BE(8, 4);
    expect(new UdpView(bad, 0, 9).checkLength()).toBeNull();
  });
});

describe('icmp', () => {
  it('deconstructs an echo request', () => {
    const view = new IcmpView().reset(icmp4Echo, 34, 12);
    expect(view.checkLength()).toBeNull();
    expect([view.type, view.code, view.checksum, view.ident, view.sequence]).toEqual([8, 0, 0xd6e5, 0x4242, 7]);
    expect(isIcmpEcho(view.type)).toBe(true);
    expect(isIcmpEcho(3)).toBe(false);
  });

  it('emits the fixture message with its checksum', () => {
    const repr = parseIcmp(new IcmpView(icmp4Echo, 34, 12));
    expect(repr.body.toString()).toBe('ping');
    const out = Buffer.alloc(12);
    expect(emitIcmp(repr, out, 0)).toBe(12);
    expect(out).toEqual(icmp4Echo.subarray(34));
  });

  it('reports a truncated header', () => {
    expect(new IcmpView(icmp4Echo, 34, 7).checkLength()).toBe('truncated-icmp');
  });
});

describe('icmpv6', () => {
  it('parses an echo request and emits it with a zero checksum', () => {
    const view = new Icmpv6View(icmp6EchoExt, 78, 12);
    expect(view.checkLength()).toBeNull();
    const repr = parseIcmpv6(view);
    expect(repr).toEqual({
      type: 128,
      code: 0,
      ident: 0x4242,
      sequence: 7,
      body: Buffer.from('ping'),
      checksum: 0x619a,
    });
    expect(isIcmpv6Echo(repr.type)).toBe(true);
    expect(isIcmpv6Echo(8)).toBe(false);
    const out = Buffer.alloc(12);
    emitIcmpv6(repr, out, 0);
    const expected = Buffer.from(icmp6EchoExt.subarray(78));
    expected.writeUInt16BE(0, 2);
    expect(out).toEqual(expected);
  });
});
