import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from '../../compare/seq.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('sequence arithmetic', () => {
  it('orders across the wrap', () => {
    expect(seqLt(0xfffffff0, 0x10)).toBe(true);
    expect(seqGt(0x10, 0xfffffff0)).toBe(true);
    expect(seqLt(0x10, 0xfffffff0)).toBe(false);
    expect(seqLe(5, 5)).toBe(true);
    expect(seqGe(5, 5)).toBe(true);
    expect(seqLt(5, 5)).toBe(false);
    expect(seqMax(0xfffffff0, 0x10)).toBe(0x10);
    expect(seqMin(0xfffffff0, 0x10)).toBe(0xfffffff0);
  });

  it('adds and subtracts modulo 2^32', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqDiff(0x10, 0xfffffff0)).toBe(0x20);
    expect(seqDiff(0xfffffff0, 0x10)).toBe(-0x20);
  });

  it('a + n comes after a for 0 < n < 2^31, and diff recovers n', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 1, max: 0x7fffffff }), (a, n) => {
        const b = seqAdd(a, n);
        expect(seqLt(a, b)).toBe(true);
        expect(seqGt(b, a)).toBe(true);
        expect(seqLe(b, a)).toBe(false);
        expect(seqDiff(b, a)).toBe(n);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThanOrEqual(0xffffffff);
      }),
    );
  });

  it('is antisymmetric except at distance 2^31', () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        if (a === b || seqDiff(a, b) === -0x80000000) return;
        expect(seqLt(a, b)).toBe(!seqLt(b, a));
      }),
    );
  });
});
