import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildArp, buildIcmp, buildIcmpv6, buildIpRaw, buildTcp, buildUdp } from '../../support/wire-build.js';
import { dissect } from '../../../compare/wire/dissect.js';
import { FrameInfo, type MalformedReason } from '../../../compare/wire/frame-info.js';
import { allFixtures } from './fixtures.js';
import { icmpSpec, tcpSpec, udpSpec } from './arbitraries.js';

const info = new FrameInfo();

/** Why the dissected frame is inconsistent, or null: every offset that applies lies within [start, end], in layer order. */
function inconsistency(start: number, end: number): string | null {
  if (info.start !== start || info.end !== end) return 'start/end not recorded';
  if (info.l3Offset < start + 14 || info.l3Offset > info.l3End || info.l3End > end) return 'l3 range';
  if (info.payloadOffset < info.l3Offset || info.payloadLength < 0) return 'payload start';
  if (info.payloadOffset + info.payloadLength > info.l3End) return 'payload end';
  if (
    info.addrLength > 0 &&
    (info.srcAddrOffset < info.l3Offset || info.dstAddrOffset + info.addrLength > info.l3End)
  ) {
    return 'addresses';
  }
  if (info.ipVersion !== 0) {
    if (info.l4Offset !== info.l3Offset + info.l3HeaderLength) return 'l3 header length';
    if (info.l4Offset > info.payloadOffset || info.l4Offset > info.l3End) return 'l4 offset';
  }
  if (info.tcpHeaderLength > 0 && info.l4Offset + info.tcpHeaderLength !== info.payloadOffset) return 'tcp header';
  if (info.srcPort >>> 16 !== 0 || info.dstPort >>> 16 !== 0) return 'ports';
  if (info.tcpSeq >>> 0 !== info.tcpSeq || info.tcpAck >>> 0 !== info.tcpAck) return 'seq/ack';
  return null;
}

function check(buf: Buffer, start: number, end: number): MalformedReason | null {
  const reason = dissect(buf, start, end, info);
  if (reason === null) expect(inconsistency(start, Math.min(end, buf.length))).toBeNull();
  return reason;
}

const validFrame = fc.oneof(
  tcpSpec.map(buildTcp),
  udpSpec.map(buildUdp),
  icmpSpec(4).map(buildIcmp),
  icmpSpec(6).map(buildIcmpv6),
  fc.constant(buildArp({ senderIp: '10.0.0.1', targetIp: '10.0.0.2' })),
  fc.constant(
    buildIpRaw({
      src: '::1',
      dst: '::2',
      protocol: 17,
      // The first fragment of a 100-byte UDP datagram.
      payload: Buffer.concat([Buffer.from('0007000900640000', 'hex'), Buffer.alloc(22)]),
      extensions: [
        { type: 0, data: Buffer.alloc(6) },
        { type: 44, fragmentOffset: 0, moreFragments: true, ident: 1 },
        { type: 51, spi: 1, sequence: 2, icv: Buffer.alloc(12) },
      ],
    }),
  ),
  fc.constantFrom(...Object.values(allFixtures)),
);

describe('dissect never throws and keeps offsets in bounds', () => {
  it('on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(20), (bytes, lead) => {
        const buf = Buffer.concat([Buffer.alloc(lead), Buffer.from(bytes)]);
        check(buf, lead, buf.length);
      }),
      { numRuns: 1000 },
    );
  });

  it('on random bytes behind a plausible Ethernet/IP prefix', () => {
    const prefix = fc.constantFrom(
      '0800 45',
      '0800 46',
      '86dd 60',
      '8100 0001 0800 45',
      '0806 0001 0800 0604',
      '86dd 6000 0000 0040 00',
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 200 }), (head, tail) => {
        const buf = Buffer.concat([Buffer.alloc(12), Buffer.from(head.replace(/ /g, ''), 'hex'), Buffer.from(tail)]);
        check(buf, 0, buf.length);
      }),
      { numRuns: 1000 },
    );
  });

  it('on valid frames with one byte changed', () => {
    fc.assert(
      fc.property(validFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, value) => {
        const buf = Buffer.from(frame);
        buf[at % buf.length] = value;
        check(buf, 0, buf.length);
      }),
      { numRuns: 1500 },
    );
  });

  it('on valid frames truncated anywhere, or given an end past the buffer', () => {
    fc.assert(
      fc.property(validFrame, fc.nat(), fc.nat(100), (frame, cut, beyond) => {
        const end = cut % (frame.length + 1);
        const reason = check(frame, 0, end);
        if (end === 0) expect(reason).toBe('empty');
        check(frame, 0, frame.length + beyond);
      }),
      { numRuns: 1000 },
    );
  });

  it('valid frames dissect without a reason', () => {
    fc.assert(
      fc.property(validFrame, (frame) => {
        expect(check(frame, 0, frame.length)).toBeNull();
      }),
    );
  });
});
