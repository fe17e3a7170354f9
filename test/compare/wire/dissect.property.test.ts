import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildArp, buildIcmp, buildIcmpv6, buildIpRaw, buildTcp, buildUdp } from '../../../compare/wire/build.js';
import { dissect } from '../../../compare/wire/dissect.js';
import { FrameInfo, type MalformedReason } from '../../../compare/wire/frame-info.js';
import { allFixtures } from './fixtures.js';
import { icmpSpec, tcpSpec, udpSpec } from './arbitraries.js';

const info = new FrameInfo();

/** Every offset that applies to the dissected frame lies within [start, end], in layer order. */
function expectConsistent(start: number, end: number): void {
  expect(info.start).toBe(start);
  expect(info.end).toBe(end);
  expect(info.l3Offset).toBeGreaterThanOrEqual(start + 14);
  expect(info.l3End).toBeLessThanOrEqual(end);
  expect(info.l3Offset).toBeLessThanOrEqual(info.l3End);
  expect(info.payloadOffset).toBeGreaterThanOrEqual(info.l3Offset);
  expect(info.payloadLength).toBeGreaterThanOrEqual(0);
  expect(info.payloadOffset + info.payloadLength).toBeLessThanOrEqual(info.l3End);
  if (info.addrLength > 0) {
    expect(info.srcAddrOffset).toBeGreaterThanOrEqual(info.l3Offset);
    expect(info.dstAddrOffset + info.addrLength).toBeLessThanOrEqual(info.l3End);
  }
  if (info.ipVersion !== 0) {
    expect(info.l4Offset).toBe(info.l3Offset + info.l3HeaderLength);
    expect(info.l4Offset).toBeLessThanOrEqual(info.payloadOffset);
    expect(info.l4Offset).toBeLessThanOrEqual(info.l3End);
  }
  if (info.tcpHeaderLength > 0) expect(info.l4Offset + info.tcpHeaderLength).toBe(info.payloadOffset);
  for (const value of [info.srcPort, info.dstPort]) expect(value >>> 16).toBe(0);
  for (const value of [info.tcpSeq, info.tcpAck]) expect(value >>> 0).toBe(value);
}

function check(buf: Buffer, start: number, end: number): MalformedReason | null {
  const reason = dissect(buf, start, end, info);
  if (reason === null) expectConsistent(start, Math.min(end, buf.length));
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
      { numRuns: 2000 },
    );
  });

  it('on random bytes behind a plausible Ethernet/IP prefix', () => {
    const prefix = fc.constantFrom('0800 45', '0800 46', '86dd 60', '8100 0001 0800 45', '0806 0001 0800 0604', '86dd 6000 0000 0040 00');
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 200 }), (head, tail) => {
        const buf = Buffer.concat([Buffer.alloc(12), Buffer.from(head.replace(/ /g, ''), 'hex'), Buffer.from(tail)]);
        check(buf, 0, buf.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('on valid frames with one byte changed', () => {
    fc.assert(
      fc.property(validFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, value) => {
        const buf = Buffer.from(frame);
        buf[at % buf.length] = value;
        check(buf, 0, buf.length);
      }),
      { numRuns: 3000 },
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
      { numRuns: 2000 },
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
