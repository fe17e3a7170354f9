/**
 * UDP, ICMP, ICMPv6 and other IP protocols: reference section 1.6 (and the non-TCP parts of 1.4). Each test
 * says whether we match QEMU or deliberately differ, and why.
 */
import { describe, expect, it } from 'vitest';
import { buildIcmp, buildIcmpv6, buildIpRaw, buildUdp } from '../support/wire-build.js';
import { Harness, udp } from './support.js';

const GRE = 47;

describe('UDP', () => {
  it('releases a primary datagram when the secondary sends the same one (matches QEMU)', () => {
    const h = new Harness();
    const p = udp('query');
    expect(h.primary(p).released).toEqual([]);
    const out = h.secondary(udp('query'));
    expect(out.released.map((r) => r.frame)).toEqual([p]);
    expect(out.dropped).toHaveLength(1);
  });

  it('ignores the IP header: TTL, IP ID and checksum may differ (matches QEMU)', () => {
    const h = new Harness();
    h.primary(udp('x', { ttl: 64, ipId: 1 }));
    h.secondary(udp('x', { ttl: 1, ipId: 999 }));
    expect(h.released).toHaveLength(1);
    expect(h.divergences).toEqual([]);
  });

  it('ignores Ethernet padding (differs: QEMU requires equal frame sizes, padding included)', () => {
    const h = new Harness();
    h.primary(udp('x', { padTo: 60 }));
    h.secondary(udp('x', { padTo: 80 }));
    expect(h.released).toHaveLength(1);
  });

  it('ignores the UDP checksum field: it follows from the compared bytes, and offload may leave it unfinished', () => {
    const h = new Harness();
    h.primary(udp('x', { checksum: 0 }));
    h.secondary(udp('x', { checksum: 0x1234 }));
    expect(h.released).toHaveLength(1);
  });

  it("reports 'payload' at the offset of the first differing payload byte (differs: QEMU records no offset)", () => {
    const h = new Harness();
    h.primary(udp('abcdef'));
    const out = h.secondary(udp('abcXef'));
    expect(out.divergences).toHaveLength(1);
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 3, protocol: 'udp' });
    expect(out.divergences[0].connection).toMatchObject({ protocol: 'udp', srcPort: 53, dstPort: 5353 });
  });

  it("reports 'length' when the payload sizes differ (matches QEMU's size check)", () => {
    const h = new Harness();
    h.primary(udp('abcdef'));
    const out = h.secondary(udp('abc'));
    expect(out.divergences[0]).toMatchObject({ reason: 'length', offset: 3 });
  });

  it('matches oldest primary first and keeps sending order (differs: QEMU takes the newest primary first)', () => {
    const h = new Harness();
    const p1 = udp('one');
    const p2 = udp('two');
    h.primary(p1);
    h.primary(p2);
    // QEMU compares P2 with S=P1 here, reports a mismatch, and later sends P2 before P1.
    h.secondary(udp('one'));
    h.secondary(udp('two'));
    expect(h.releasedFrames).toEqual([p1, p2]);
    expect(h.divergences).toEqual([]);
  });

  it('searches the secondary queue oldest-first for the equal datagram (matches QEMU)', () => {
    const h = new Harness();
    h.secondary(udp('extra'));
    h.secondary(udp('one'));
    const p = udp('one');
    expect(h.primary(p).released.map((r) => r.frame)).toEqual([p]);
    expect(h.engine.stats().heldSecondaryPackets).toBe(1);
  });

  it('keys by ports: a difference on one flow does not hold another (matches QEMU)', () => {
    const h = new Harness();
    h.primary(udp('a', { srcPort: 1000 }));
    h.secondary(udp('b', { srcPort: 1000 }));
    h.primary(udp('c', { srcPort: 2000 }));
    h.secondary(udp('c', { srcPort: 2000 }));
    expect(h.divergences).toHaveLength(1);
    expect(h.released).toHaveLength(1);
  });
});

describe('ICMP and ICMPv6', () => {
  const ping = (id: number, seq: number, payload = 'ping') =>
    buildIcmp({ src: '10.0.0.2', dst: '10.0.0.1', type: 0, id, seq, payload });

  it('keys echo by identifier: two pings are two connections (differs: QEMU puts all ICMP between two hosts in one)', () => {
    const h = new Harness();
    h.primary(ping(1, 1));
    h.primary(ping(2, 1));
    h.secondary(ping(2, 1));
    expect(h.releasedFrames).toEqual([ping(2, 1)]);
    expect(h.engine.stats().connections).toBe(2);
  });

  it("compares the ICMP header (echo sequence) and reports 'header' with the offset in it (matches QEMU: L4 compared)", () => {
    const h = new Harness();
    h.primary(ping(1, 1));
    const out = h.secondary(ping(1, 2));
    expect(out.divergences[0]).toMatchObject({ reason: 'header', offset: 7, protocol: 'icmp' });
  });

  it('compares ICMPv6 echo like ICMP (differs: QEMU does not compare IPv6 at all)', () => {
    const h = new Harness();
    const p = buildIcmpv6({ src: 'fd00::2', dst: 'fd00::1', type: 129, id: 5, seq: 1, payload: 'v6' });
    h.primary(p);
    h.secondary(buildIcmpv6({ src: 'fd00::2', dst: 'fd00::1', type: 129, id: 5, seq: 1, payload: 'v6', ttl: 3 }));
    expect(h.releasedFrames).toEqual([p]);
    h.primary(buildIcmpv6({ src: 'fd00::2', dst: 'fd00::1', type: 129, id: 5, seq: 2, payload: 'v6' }));
    const out = h.secondary(buildIcmpv6({ src: 'fd00::2', dst: 'fd00::1', type: 129, id: 5, seq: 2, payload: 'v7' }));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 1, protocol: 'icmpv6' });
    expect(out.divergences[0].connection).toMatchObject({ family: 6, src: 'fd00::2', dst: 'fd00::1' });
  });

  it('releases neighbour discovery at once and drops the secondary’s: it runs on each VM’s own timers', () => {
    const h = new Harness();
    const ns = buildIcmpv6({ src: 'fd00::2', dst: 'ff02::1:ff00:1', type: 135, payload: Buffer.alloc(20) });
    expect(h.primary(ns).released.map((r) => r.frame)).toEqual([ns]);
    expect(h.secondary(ns).dropped).toHaveLength(1);
    expect(h.engine.stats()).toMatchObject({ uncomparedPrimary: 1, uncomparedSecondary: 1, connections: 0 });
  });
});

describe('other IP protocols', () => {
  const gre = (payload: string, over = {}) =>
    buildIpRaw({ src: '10.0.0.2', dst: '10.0.0.1', protocol: GRE, payload, ...over });

  it('normalises TTL, IP ID, header checksum and MACs (differs: QEMU compares every byte, MACs and TTL included)', () => {
    const h = new Harness();
    const p = gre('tunnel', { ttl: 64, ipId: 7, srcMac: '52:54:00:00:00:0a' });
    h.primary(p);
    h.secondary(gre('tunnel', { ttl: 32, ipId: 9, srcMac: '52:54:00:00:00:0b' }));
    expect(h.releasedFrames).toEqual([p]);
  });

  it("reports 'payload' with the offset within the IP payload (differs: QEMU records no offset)", () => {
    const h = new Harness();
    h.primary(gre('tunnel'));
    const out = h.secondary(gre('tunnEl'));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 4, protocol: 'ip' });
  });

  it("reports 'header' for a compared IP header field, here the DSCP byte (matches QEMU, which compares it too)", () => {
    const h = new Harness();
    h.primary(gre('tunnel', { tos: 0 }));
    const out = h.secondary(gre('tunnel', { tos: 0x20 }));
    expect(out.divergences[0]).toMatchObject({ reason: 'header', offset: 1 });
  });

  it('compares IP fragments as IP, without reading a transport header they do not carry (differs: QEMU does not recognise fragments)', () => {
    const h = new Harness();
    const frag = (payload: string) =>
      buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 1, dstPort: 2, payload, moreFragments: true });
    h.primary(frag('first part'));
    h.secondary(frag('first part'));
    expect(h.released).toHaveLength(1);
    expect(h.engine.stats().connections).toBe(1);
  });
});
