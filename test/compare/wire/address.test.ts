import { describe, expect, it } from 'vitest';
import { formatIpv6, formatMac, ipBytes, ipFamily, writeIpv6, writeMac } from '../../../compare/wire/address.js';

const v6 = (text: string): string => formatIpv6(ipBytes(text), 0);

describe('addresses', () => {
  it('formats IPv6 the RFC 5952 way', () => {
    expect(v6('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(v6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // first of two equal runs
    expect(v6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // a single zero group stays
    expect(v6('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1'); // the longest run wins
    expect(v6('::')).toBe('::');
    expect(v6('::1')).toBe('::1');
    expect(v6('fe80::')).toBe('fe80::');
    expect(v6('FF02::FB')).toBe('ff02::fb');
    expect(v6('::ffff:c000:201')).toBe('::ffff:192.0.2.1'); // IPv4-mapped
    expect(v6('::c000:201')).toBe('::192.0.2.1'); // IPv4-compatible, as inet_ntop prints it
    expect(v6('::1:ffff:c000:201')).toBe('::1:ffff:c000:201');
    expect(v6('::ffff:0:201')).toBe('::ffff:0.0.2.1');
  });

  it('parses and rejects', () => {
    const buf = Buffer.alloc(16);
    writeIpv6('1:2:3:4:5:6:7:8', buf, 0);
    expect(buf.toString('hex')).toBe('00010002000300040005000600070008');
    expect(() => writeIpv6('1::2::3', buf, 0)).toThrow(/IPv6/);
    expect(() => writeIpv6('1:2:3:4:5:6:7', buf, 0)).toThrow(/IPv6/);
    expect(() => writeIpv6('1:2:3:4:5:6:7:8:9', buf, 0)).toThrow(/IPv6/);
    expect(() => writeIpv6('12345::', buf, 0)).toThrow(/IPv6/);
    expect(() => ipBytes('10.0.0.256')).toThrow(/IP/);
    expect(() => ipBytes('host')).toThrow(/IP/);
  });

  it('tells the family from the form', () => {
    expect([ipFamily('10.0.0.1'), ipFamily('::1'), ipFamily('example')]).toEqual([4, 6, 0]);
  });

  it('formats and parses MACs', () => {
    const buf = Buffer.alloc(6);
    writeMac('0A-1b-2c-3d-4e-5f', buf, 0);
    expect(formatMac(buf, 0)).toBe('0a:1b:2c:3d:4e:5f');
    expect(() => writeMac('0a:1b:2c:3d:4e', buf, 0)).toThrow(/MAC/);
  });
});
