import { describe, expect, it } from 'vitest';
import { buildEthernet, buildIpRaw } from '../../support/wire-build.js';
import { connectionIdOf, protocolOf } from '../../../compare/wire/connection-id.js';
import { dissect } from '../../../compare/wire/dissect.js';
import { FrameInfo } from '../../../compare/wire/frame-info.js';
import { arpRequest, gre4, icmp4Echo, icmp6EchoExt, tcp4, tcp6Vlan, udp6 } from './fixtures.js';

const dissected = (frame: Buffer): FrameInfo => {
  const info = new FrameInfo();
  expect(dissect(frame, 0, frame.length, info)).toBeNull();
  return info;
};

describe('connectionIdOf', () => {
  it('prints IPv4 and IPv6 connections', () => {
    expect(connectionIdOf(dissected(tcp4))).toEqual({
      protocol: 'tcp',
      family: 4,
      src: '192.0.2.1',
      dst: '192.0.2.2',
      srcPort: 40000,
      dstPort: 80,
    });
    expect(connectionIdOf(dissected(tcp6Vlan))).toEqual({
      protocol: 'tcp',
      family: 6,
      src: '2001:db8::1',
      dst: '2001:db8::2',
      srcPort: 443,
      dstPort: 50000,
    });
    expect(connectionIdOf(dissected(udp6))).toMatchObject({ protocol: 'udp', dst: 'ff02::fb', dstPort: 5353 });
  });

  it('labels ICMP, other IP, ARP and non-IP frames', () => {
    expect(connectionIdOf(dissected(icmp4Echo))).toMatchObject({ protocol: 'icmp', srcPort: 0x4242, dstPort: 0 });
    expect(connectionIdOf(dissected(icmp6EchoExt))).toMatchObject({ protocol: 'icmpv6', src: 'fe80::1' });
    expect(connectionIdOf(dissected(gre4))).toMatchObject({ protocol: 'ip', family: 4 });
    expect(connectionIdOf(dissected(arpRequest))).toEqual({
      protocol: 'arp',
      family: 0,
      src: '192.0.2.1',
      dst: '192.0.2.2',
      srcPort: 0,
      dstPort: 0,
    });
    expect(connectionIdOf(dissected(buildEthernet({ etherType: 0x88cc })))).toEqual({
      protocol: 'other',
      family: 0,
      src: '',
      dst: '',
      srcPort: 0,
      dstPort: 0,
    });
  });

  it('labels a later fragment as plain IP (it has no transport header)', () => {
    const frame = buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, fragmentOffset: 10, payload: 'x' });
    expect(protocolOf(dissected(frame))).toBe('ip');
  });
});
