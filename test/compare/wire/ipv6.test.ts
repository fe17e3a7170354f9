import { describe, expect, it } from 'vitest';
import {
  emitIpv6,
  emitIpv6Extensions,
  ExtensionWalk,
  Ipv6View,
  parseIpv6,
  type Ipv6ExtensionRepr,
} from '../../../compare/wire/ipv6.js';
import { icmp6EchoExt, tcp6Vlan, udp6AtomicFragment } from './fixtures.js';

const ip = (frame: Buffer, offset: number): Ipv6View => new Ipv6View().reset(frame, offset, frame.length - offset);

describe('ipv6', () => {
  it('deconstructs the fixed header', () => {
    const view = ip(tcp6Vlan, 18);
    expect(view.checkLength()).toBeNull();
    expect(view.version).toBe(6);
    expect(view.payloadLength).toBe(23);
    expect(view.nextHeader).toBe(6);
    expect(view.hopLimit).toBe(64);
    expect(view.srcOffset).toBe(26);
    expect(view.payloadOffset).toBe(58);
  });

  it('parses traffic class and flow label', () => {
    const buf = Buffer.from(tcp6Vlan.subarray(18, 58));
    buf.writeUInt32BE(0x6abcdef1, 0);
    expect(parseIpv6(new Ipv6View(buf, 0, 40))).toMatchObject({ trafficClass: 0xab, flowLabel: 0xcdef1 });
  });

  it('parses and emits the fixture header', () => {
    const repr = parseIpv6(ip(tcp6Vlan, 18));
    expect(repr).toEqual({
      src: '2001:db8::1',
      dst: '2001:db8::2',
      nextHeader: 6,
      hopLimit: 64,
      trafficClass: 0,
      flowLabel: 0,
      payloadLength: 23,
    });
    const out = Buffer.alloc(40);
    expect(emitIpv6(repr, out, 0)).toBe(40);
    expect(out).toEqual(tcp6Vlan.subarray(18, 58));
  });

  it('reports truncation, version and payload length', () => {
    const header = Buffer.from(tcp6Vlan.subarray(18));
    expect(new Ipv6View(header, 0, 39).checkLength()).toBe('truncated-ipv6');
    expect(new Ipv6View(header, 0, header.length - 1).checkLength()).toBe('ipv6-payload-length');
    header[0] = 0x40;
    expect(new Ipv6View(header, 0, header.length).checkLength()).toBe('bad-ip-version');
  });

  it('walks hop-by-hop and destination options to ICMPv6', () => {
    const walk = new ExtensionWalk();
    expect(walk.walk(icmp6EchoExt, 54, icmp6EchoExt.length, 0, false)).toBeNull();
    expect(walk.protocol).toBe(58);
    expect(walk.offset).toBe(54 + 8 + 16);
    expect(walk.isFragment).toBe(false);
  });

  it('walks an atomic fragment header to UDP', () => {
    const walk = new ExtensionWalk();
    expect(walk.walk(udp6AtomicFragment, 54, udp6AtomicFragment.length, 44, false)).toBeNull();
    expect([walk.protocol, walk.offset, walk.isFragment, walk.moreFragments]).toEqual([17, 62, false, false]);
  });

  it('stops at a later fragment, which holds no upper-layer header', () => {
    const exts: Ipv6ExtensionRepr[] = [{ type: 44, fragmentOffset: 3, moreFragments: true, ident: 1 }];
    const buf = Buffer.alloc(16);
    expect(emitIpv6Extensions(exts, 6, buf, 0)).toBe(8);
    expect(buf.subarray(0, 8).toString('hex')).toBe('0600001900000001');
    const walk = new ExtensionWalk();
    expect(walk.walk(buf, 0, 16, 44, false)).toBeNull();
    expect([walk.protocol, walk.offset, walk.isFragment, walk.moreFragments]).toEqual([6, 8, true, true]);
  });

  it('emits and walks routing and AH headers', () => {
    const exts: Ipv6ExtensionRepr[] = [
      { type: 43, data: Buffer.from([0, 0, 0, 0, 0, 0]) },
      { type: 51, spi: 0x1000, sequence: 1, icv: Buffer.alloc(12, 0xaa) },
    ];
    const buf = Buffer.alloc(64);
    const length = emitIpv6Extensions(exts, 17, buf, 0);
    expect(length).toBe(8 + 24);
    // AH length field: 24 bytes / 4 - 2 = 4.
    expect(buf.subarray(8, 20).toString('hex')).toBe('110400000000100000000001');
    const walk = new ExtensionWalk();
    expect(walk.walk(buf, 0, length, 43, false)).toBeNull();
    expect([walk.protocol, walk.offset]).toEqual([17, 32]);
  });

  it('reports an extension header running past the payload', () => {
    const walk = new ExtensionWalk();
    expect(walk.walk(icmp6EchoExt, 54, 54 + 7, 0, false)).toBe('truncated-ipv6-extension');
    expect(walk.walk(icmp6EchoExt, 54, 54 + 8 + 15, 0, false)).toBe('truncated-ipv6-extension');
  });

  it('walks only AH when asked for IPv4', () => {
    const walk = new ExtensionWalk();
    expect(walk.walk(icmp6EchoExt, 54, icmp6EchoExt.length, 0, true)).toBeNull();
    expect([walk.protocol, walk.offset]).toEqual([0, 54]);
  });
});
