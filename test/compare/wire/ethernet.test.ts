import { describe, expect, it } from 'vitest';
import { emitEthernet, EthernetView, parseEthernet } from '../../../compare/wire/ethernet.js';
import { emitVlan, isVlanTpid, parseVlan, VlanView } from '../../../compare/wire/vlan.js';
import { arpRequest, hex, tcp4, tcp4QinqOptions } from './fixtures.js';

describe('ethernet', () => {
  it('deconstructs a frame', () => {
    const view = new EthernetView().reset(tcp4, 0, tcp4.length);
    expect(view.checkLength()).toBeNull();
    expect(view.etherType).toBe(0x0800);
    expect(view.payloadOffset).toBe(14);
    expect(tcp4.subarray(view.dstOffset, view.dstOffset + 6).toString('hex')).toBe('525400000002');
  });

  it('parses to a repr', () => {
    const view = new EthernetView(arpRequest, 0, arpRequest.length);
    expect(parseEthernet(view)).toEqual({ dst: 'ff:ff:ff:ff:ff:ff', src: '52:54:00:00:00:01', etherType: 0x0806 });
  });

  it('emits the header bytes of the fixture', () => {
    const out = Buffer.alloc(14);
    expect(emitEthernet({ dst: '52:54:00:00:00:02', src: '52:54:00:00:00:01', etherType: 0x0800 }, out, 0)).toBe(14);
    expect(out).toEqual(tcp4.subarray(0, 14));
  });

  it('reads at an offset (after a vnet header)', () => {
    const framed = Buffer.concat([Buffer.alloc(10, 0xee), tcp4]);
    const view = new EthernetView().reset(framed, 10, tcp4.length);
    expect(view.etherType).toBe(0x0800);
    expect(parseEthernet(view).src).toBe('52:54:00:00:00:01');
  });

  it('checks its length', () => {
    expect(new EthernetView(tcp4, 0, 0).checkLength()).toBe('empty');
    expect(new EthernetView(tcp4, 0, 13).checkLength()).toBe('truncated-ethernet');
    expect(new EthernetView(tcp4, 0, 14).checkLength()).toBeNull();
  });

  it('rejects a bad MAC in emit', () => {
    expect(() =>
      emitEthernet({ dst: '52:54:00:00:02', src: '52:54:00:00:00:01', etherType: 1 }, Buffer.alloc(14), 0),
    ).toThrow(/MAC/);
  });
});

describe('vlan', () => {
  it('deconstructs 802.1ad then 802.1Q tags', () => {
    const outer = new VlanView().reset(tcp4QinqOptions, 14, tcp4QinqOptions.length - 14);
    expect(outer.checkLength()).toBeNull();
    expect(outer.vlanId).toBe(10);
    expect(outer.etherType).toBe(0x8100);
    const inner = new VlanView().reset(tcp4QinqOptions, outer.payloadOffset, tcp4QinqOptions.length - 18);
    expect(parseVlan(inner)).toEqual({ priority: 0, dropEligible: false, vlanId: 20, etherType: 0x0800 });
  });

  it('splits the tag control field into priority, DEI and VLAN id', () => {
    const tag = hex('b064 0800');
    expect(parseVlan(new VlanView(tag, 0, 4))).toEqual({
      priority: 5,
      dropEligible: true,
      vlanId: 0x064,
      etherType: 0x0800,
    });
  });

  it('emits what it parses', () => {
    const out = Buffer.alloc(4);
    emitVlan({ priority: 5, dropEligible: true, vlanId: 100, etherType: 0x86dd }, out, 0);
    expect(out.toString('hex')).toBe('b06486dd');
  });

  it('knows the tag protocol ids and checks its length', () => {
    expect([0x8100, 0x88a8, 0x9100, 0x0800].map(isVlanTpid)).toEqual([true, true, true, false]);
    expect(new VlanView(tcp4, 0, 3).checkLength()).toBe('truncated-vlan');
  });
});
