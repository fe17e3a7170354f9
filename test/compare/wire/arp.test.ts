import { describe, expect, it } from 'vitest';
import { ArpView, emitArp, parseArp } from '../../../compare/wire/arp.js';
import { arpRequest, hex } from './fixtures.js';

describe('arp', () => {
  it('deconstructs a request', () => {
    const view = new ArpView().reset(arpRequest, 14, 28);
    expect(view.checkLength()).toBeNull();
    expect(view.isEthernetIpv4).toBe(true);
    expect(view.operation).toBe(1);
    expect([
      view.senderHardwareOffset,
      view.senderProtocolOffset,
      view.targetHardwareOffset,
      view.targetProtocolOffset,
    ]).toEqual([22, 28, 32, 38]);
  });

  it('parses and emits the fixture', () => {
    const repr = parseArp(new ArpView(arpRequest, 14, 28));
    expect(repr).toEqual({
      hardwareType: 1,
      protocolType: 0x0800,
      operation: 1,
      senderMac: '52:54:00:00:00:01',
      senderIp: '192.0.2.1',
      targetMac: '00:00:00:00:00:00',
      targetIp: '192.0.2.2',
    });
    const out = Buffer.alloc(28);
    expect(emitArp(repr, out, 0)).toBe(28);
    expect(out).toEqual(arpRequest.subarray(14));
  });

  it('places addresses by the declared lengths and prints other layouts as hex', () => {
    // Hardware length 2, protocol length 1: a toy layout, still well-formed.
    const buf = hex('0006 1234 02 01 0002 aaaa 01 bbbb 02');
    const view = new ArpView(buf, 0, buf.length);
    expect(view.checkLength()).toBeNull();
    expect(parseArp(view)).toMatchObject({ senderMac: 'aaaa', senderIp: '01', targetMac: 'bbbb', targetIp: '02' });
  });

  it('reports truncation of the fixed part and of the addresses', () => {
    expect(new ArpView(arpRequest, 14, 7).checkLength()).toBe('truncated-arp');
    expect(new ArpView(arpRequest, 14, 27).checkLength()).toBe('truncated-arp');
  });
});
