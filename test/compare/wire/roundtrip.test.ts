import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipBytes } from '../../../compare/wire/address.js';
import { buildIcmp, buildIcmpv6, buildTcp, buildUdp } from '../../support/wire-build.js';
import { transportChecksumOk } from '../../../compare/wire/checksum.js';
import { connectionIdOf } from '../../../compare/wire/connection-id.js';
import { dissect } from '../../../compare/wire/dissect.js';
import { FrameInfo } from '../../../compare/wire/frame-info.js';
import { Ipv4View } from '../../../compare/wire/ipv4.js';
import { parseTcp, TcpView } from '../../../compare/wire/tcp.js';
import { icmpSpec, tcpSpec, udpSpec } from './arbitraries.js';

const info = new FrameInfo();

function expectAddresses(src: string, dst: string): void {
  const srcBytes = ipBytes(src);
  expect(info.addrLength).toBe(srcBytes.length);
  expect(info.buf.subarray(info.srcAddrOffset, info.srcAddrOffset + info.addrLength)).toEqual(srcBytes);
  expect(info.buf.subarray(info.dstAddrOffset, info.dstAddrOffset + info.addrLength)).toEqual(ipBytes(dst));
}

describe('build -> dissect round trip', () => {
  it('TCP', () => {
    fc.assert(
      fc.property(tcpSpec, (spec) => {
        const frame = buildTcp(spec);
        expect(dissect(frame, 0, frame.length, info)).toBeNull();
        expect(info.ipVersion).toBe(spec.src.includes(':') ? 6 : 4);
        expect(info.vlanId).toBe(spec.serviceVlanId ?? spec.vlanId ?? -1);
        expectAddresses(spec.src, spec.dst);
        expect(info).toMatchObject({
          ipProtocol: 6,
          srcPort: spec.srcPort,
          dstPort: spec.dstPort,
          tcpSeq: spec.seq,
          tcpAck: spec.ack,
          tcpFlags: spec.flags,
          tcpWindow: spec.window,
          tcpHeaderLength: 20 + Math.ceil((spec.options?.length ?? 0) / 4) * 4,
        });
        expect(frame.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength)).toEqual(spec.payload);
        expect(transportChecksumOk(info)).toBe(true);
        if (info.ipVersion === 4)
          expect(new Ipv4View(frame, info.l3Offset, info.end - info.l3Offset).checksumOk).toBe(true);
        const repr = parseTcp(new TcpView(frame, info.l4Offset, info.l3End - info.l4Offset));
        expect(repr.options.subarray(0, spec.options?.length)).toEqual(spec.options);
        const id = connectionIdOf(info);
        expect([id.protocol, id.srcPort, id.dstPort]).toEqual(['tcp', spec.srcPort, spec.dstPort]);
        expect(ipBytes(id.src)).toEqual(ipBytes(spec.src));
      }),
    );
  });

  it('UDP', () => {
    fc.assert(
      fc.property(udpSpec, (spec) => {
        const frame = buildUdp(spec);
        expect(dissect(frame, 0, frame.length, info)).toBeNull();
        expectAddresses(spec.src, spec.dst);
        expect(info).toMatchObject({ ipProtocol: 17, srcPort: spec.srcPort, dstPort: spec.dstPort });
        expect(frame.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength)).toEqual(spec.payload);
        expect(transportChecksumOk(info)).toBe(true);
        // A computed zero is sent as all ones: 0 would mean "no checksum".
        expect(frame.readUInt16BE(info.l4Offset + 6)).not.toBe(0);
      }),
    );
  });

  it('ICMP and ICMPv6', () => {
    fc.assert(
      fc.property(fc.oneof(icmpSpec(4), icmpSpec(6)), (spec) => {
        const v6 = spec.src.includes(':');
        const frame = v6 ? buildIcmpv6(spec) : buildIcmp(spec);
        expect(dissect(frame, 0, frame.length, info)).toBeNull();
        expectAddresses(spec.src, spec.dst);
        expect(info).toMatchObject({ ipProtocol: v6 ? 58 : 1, icmpType: spec.type, icmpCode: spec.code });
        const echo = v6 ? spec.type === 128 || spec.type === 129 : spec.type === 0 || spec.type === 8;
        expect(info.srcPort).toBe(echo ? spec.id : 0);
        expect(frame.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength)).toEqual(spec.payload);
        expect(transportChecksumOk(info)).toBe(true);
      }),
    );
  });
});
