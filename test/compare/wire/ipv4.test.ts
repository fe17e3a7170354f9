import { describe, expect, it } from 'vitest';
import { emitIpv4, Ipv4View, parseIpv4 } from '../../../compare/wire/ipv4.js';
import { hex, tcp4, tcp4QinqOptions } from './fixtures.js';

const ip = (frame: Buffer, offset = 14): Ipv4View => new Ipv4View().reset(frame, offset, frame.length - offset);

describe('ipv4', () => {
  it('deconstructs a header', () => {
    const view = ip(tcp4);
    expect(view.checkLength()).toBeNull();
    expect(view.version).toBe(4);
    expect(view.headerLength).toBe(20);
    expect(view.totalLength).toBe(47);
    expect(view.ident).toBe(0x1234);
    expect(view.dontFragment).toBe(true);
    expect(view.moreFragments).toBe(false);
    expect(view.fragmentOffset).toBe(0);
    expect(view.ttl).toBe(64);
    expect(view.protocol).toBe(6);
    expect(view.checksum).toBe(0xa491);
    expect(view.checksumOk).toBe(true);
    expect(view.payloadOffset).toBe(34);
  });

  it('verifies a known-good header checksum (a textbook example header)', () => {
    const header = hex('4500 0073 0000 4000 4011 b861 c0a80001 c0a800c7');
    expect(new Ipv4View(header, 0, 20).checksumOk).toBe(true);
    header[8] = 63;
    expect(new Ipv4View(header, 0, 20).checksumOk).toBe(false);
  });

  it('parses a header with options', () => {
    const repr = parseIpv4(ip(tcp4QinqOptions, 22));
    expect(repr).toMatchObject({ src: '192.0.2.1', dst: '192.0.2.2', protocol: 6, ttl: 64, payloadLength: 20 });
    expect(repr.options.toString('hex')).toBe('01010100');
  });

  it('emits the fixture header, options and checksum included', () => {
    const expected = tcp4QinqOptions.subarray(22, 46);
    const out = Buffer.alloc(24);
    const written = emitIpv4(
      {
        src: '192.0.2.1',
        dst: '192.0.2.2',
        protocol: 6,
        ttl: 64,
        ident: 0,
        dscp: 0,
        ecn: 0,
        dontFragment: false,
        moreFragments: false,
        fragmentOffset: 0,
        options: hex('010101'),
        payloadLength: 20,
      },
      out,
      0,
    );
    expect(written).toBe(24);
    expect(out).toEqual(expected);
  });

  it('round-trips parse -> emit', () => {
    const repr = parseIpv4(ip(tcp4));
    const out = Buffer.alloc(20);
    emitIpv4(repr, out, 0);
    expect(out).toEqual(tcp4.subarray(14, 34));
  });

  it('reports each malformed header', () => {
    const header = (text: string): Ipv4View => {
      const buf = hex(text);
      return new Ipv4View(buf, 0, buf.length);
    };
    const base = '0000 0000 0000 4006 0000 c0000201 c0000202';
    expect(header('4500 0014 0000 4000 4006 0000 c0000201 c00002').checkLength()).toBe('truncated-ipv4');
    expect(header(`6500 0014 ${base.slice(5)}`).checkLength()).toBe('bad-ip-version');
    expect(header(`4400 0014 ${base.slice(5)}`).checkLength()).toBe('bad-ipv4-ihl');
    expect(header(`4600 0018 ${base.slice(5)}`).checkLength()).toBe('truncated-ipv4');
    expect(header(`4500 0015 ${base.slice(5)}`).checkLength()).toBe('ipv4-total-length');
    expect(header(`4500 0013 ${base.slice(5)}`).checkLength()).toBe('ipv4-total-length');
    expect(header(`4500 0014 ${base.slice(5)}`).checkLength()).toBeNull();
  });

  it('reads fragment fields', () => {
    const buf = hex('4500 0014 0001 2005 4011 0000 c0000201 c0000202');
    const view = new Ipv4View(buf, 0, 20);
    expect(view.moreFragments).toBe(true);
    expect(view.dontFragment).toBe(false);
    expect(view.fragmentOffset).toBe(5);
  });
});
