/**
 * What QEMU calls "unsupported" frames (reference section 1.2): non-IP, IPv6, VLAN, short and empty frames.
 * Each test says whether we match QEMU or deliberately differ, and why.
 */
import { describe, expect, it } from 'vitest';
import { buildArp, buildEthernet, buildTcp } from '../support/wire-build.js';
import { Harness, tcp } from './support.js';

const arpReply = (over = {}) =>
  buildArp({ operation: 2, senderIp: '10.0.0.2', targetIp: '10.0.0.1', senderMac: '52:54:00:00:00:01', ...over });

describe('non-IP frames', () => {
  it('releases an ARP request from the primary at once and drops the secondary’s (matches QEMU)', () => {
    const h = new Harness();
    const request = buildArp({ senderIp: '10.0.0.2', targetIp: '10.0.0.1' });
    expect(h.primary(request).released.map((p) => p.frame)).toEqual([request]);
    const out = h.secondary(request);
    expect(out.dropped).toHaveLength(1);
    expect(out.released).toEqual([]);
    expect(h.engine.stats()).toMatchObject({ uncomparedPrimary: 1, uncomparedSecondary: 1 });
  });

  it('releases other EtherTypes (here LLDP) from the primary at once, counted (matches QEMU)', () => {
    const h = new Harness();
    const lldp = buildEthernet({ etherType: 0x88cc, payload: Buffer.alloc(40, 1) });
    expect(h.primary(lldp).released).toHaveLength(1);
    expect(h.secondary(lldp).dropped).toHaveLength(1);
  });

  it('compares ARP replies, which answer requests both VMs saw (differs: QEMU passes every ARP frame)', () => {
    const h = new Harness();
    const reply = arpReply();
    expect(h.primary(reply).released).toEqual([]);
    expect(h.secondary(arpReply({ padTo: 60 })).released.map((p) => p.frame)).toEqual([reply]);
    h.primary(arpReply());
    const out = h.secondary(arpReply({ senderMac: '52:54:00:00:00:99' }));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 13, protocol: 'arp' });
    expect(out.divergences[0].connection).toMatchObject({ family: 0, src: '10.0.0.2', dst: '10.0.0.1' });
  });

  it('passes a gratuitous ARP reply through: VMs announce on their own schedule (matches QEMU)', () => {
    const h = new Harness();
    const gratuitous = arpReply({ targetIp: '10.0.0.2' });
    expect(h.primary(gratuitous).released).toHaveLength(1);
  });
});

describe('frames QEMU cannot parse', () => {
  it('compares VLAN-tagged TCP, each VLAN its own connection (differs: QEMU passes VLAN frames uncompared)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc', { vlanId: 10 }));
    h.primary(tcp(1, 'abc', { vlanId: 20 }));
    h.secondary(tcp(1, 'abc', { vlanId: 20 }));
    expect(h.released).toHaveLength(1);
    expect(h.engine.stats().connections).toBe(2);
    const out = h.secondary(tcp(1, 'abX', { vlanId: 10 }));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 2 });
  });

  it('compares IPv6 TCP (differs: QEMU passes IPv6 uncompared)', () => {
    const h = new Harness();
    const spec = { src: 'fd00::2', dst: 'fd00::1', srcPort: 80, dstPort: 4000, ack: 1, flags: 0x10 };
    h.primary(buildTcp({ ...spec, seq: 1, payload: 'v6 data' }));
    const out = h.secondary(buildTcp({ ...spec, seq: 1, payload: 'v6 dat!' }));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 6 });
    expect(out.divergences[0].connection).toMatchObject({ family: 6, src: 'fd00::2', dst: 'fd00::1' });
  });

  it('rejects a zero-length frame as malformed (differs: QEMU aborts on it)', () => {
    const h = new Harness();
    const out = h.primary(Buffer.alloc(0));
    expect(out.malformed).toEqual([{ side: 'primary', reason: 'empty', frame: Buffer.alloc(0) }]);
    expect(out.released).toEqual([]);
    expect(h.engine.stats().malformedPackets).toBe(1);
  });

  it('rejects a frame too short for its IP header as malformed, with a reason and a count (differs: QEMU forwards the primary’s and silently drops the secondary’s)', () => {
    const h = new Harness();
    const truncated = tcp(1, 'abc').subarray(0, 30);
    expect(h.primary(truncated).malformed[0]).toMatchObject({ side: 'primary', reason: 'truncated-ipv4' });
    expect(h.secondary(truncated).malformed[0]).toMatchObject({ side: 'secondary', reason: 'truncated-ipv4' });
    expect(h.engine.stats().malformedPackets).toBe(2);
    expect(h.engine.stats().connections).toBe(0);
  });

  it('takes the Ethernet start from the caller (a vnet header before it is the caller’s to check, as QEMU’s vnet_hdr_len)', () => {
    const h = new Harness();
    const p = Buffer.concat([Buffer.alloc(10, 0xee), tcp(1, 'abc')]);
    const s = Buffer.concat([Buffer.alloc(12, 0xdd), tcp(1, 'abc')]);
    h.engine.push('primary', p, 10, 0, 10);
    const decision = h.engine.push('secondary', s, 12, 0, 12);
    expect(decision.release).toHaveLength(1);
    expect(decision.release[0]).toMatchObject({ frame: p, start: 10, tag: 10 });
  });
});
