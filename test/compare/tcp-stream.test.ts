import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seqGe } from '../../compare/seq.js';
import { furthestEnd, segmentEnd, segmentUnits } from '../../compare/tcp-stream.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';

const { SYN, ACK, FIN, RST } = TcpFlag;

describe('TCP stream arithmetic', () => {
  it('counts payload bytes plus one for SYN and one for FIN; ACK and RST occupy nothing', () => {
    expect(segmentUnits(SYN, 0)).toBe(1);
    expect(segmentUnits(SYN | FIN, 3)).toBe(5);
    expect(segmentUnits(ACK, 1448)).toBe(1448);
    expect(segmentUnits(ACK | FIN, 0)).toBe(1);
    expect(segmentUnits(RST | ACK, 0)).toBe(0);
  });

  it('ends a segment across the 2^32 wrap', () => {
    expect(segmentEnd(0xfffffffe, ACK, 4)).toBe(2);
    expect(segmentEnd(0xffffffff, SYN, 0)).toBe(0);
  });

  it('keeps the furthest end: a retransmission or a late segment never moves it back, even across the wrap', () => {
    expect(furthestEnd(false, 12345, 7)).toBe(7);
    expect(furthestEnd(true, 0xfffffff0, 0x10)).toBe(0x10);
    expect(furthestEnd(true, 0x10, 0xfffffff0)).toBe(0x10);
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.array(fc.integer({ min: -5000, max: 5000 })), (start, steps) => {
        let end = start;
        for (const step of steps) {
          const next = furthestEnd(true, end, (start + step) >>> 0);
          expect(seqGe(next, end)).toBe(true);
          end = next;
        }
        const furthest = Math.max(0, ...steps);
        expect(end).toBe((start + furthest) >>> 0);
      }),
    );
  });
});
