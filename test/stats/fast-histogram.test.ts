import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../src/stats/fast-histogram.js';

const buckets = [0.001, 0.01, 0.1, 1, 10];

function pair() {
  const fastRegistry = new Registry();
  const referenceRegistry = new Registry();
  const fast = new FastHistogram({ name: 'h_seconds', help: 'h', buckets, registers: [fastRegistry] });
  const reference = new Histogram({ name: 'h_seconds', help: 'h', buckets, registers: [referenceRegistry] });
  return { fast, reference, fastRegistry, referenceRegistry };
}

describe('FastHistogram', () => {
  it('exposes exactly what a prom-client Histogram given the same values exposes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { maxLength: 200 }), async (values) => {
        const { fast, reference, fastRegistry, referenceRegistry } = pair();
        for (const v of values) {
          fast.add(v);
          reference.observe(v);
        }
        expect(await fastRegistry.metrics()).toBe(await referenceRegistry.metrics());
        expect(await fastRegistry.getMetricsAsJSON()).toEqual(await referenceRegistry.getMetricsAsJSON());
      }),
      { numRuns: 50 },
    );
  });

  it('counts values on a bucket bound in that bucket (le is inclusive)', async () => {
    const { fast, fastRegistry } = pair();
    fast.add(0.01);
    fast.add(0.0100001);
    const text = await fastRegistry.metrics();
    expect(text).toContain('h_seconds_bucket{le="0.01"} 1');
    expect(text).toContain('h_seconds_bucket{le="0.1"} 2');
    expect(text).toContain('h_seconds_bucket{le="+Inf"} 2');
  });

  it('takes observe() too, and reset() empties it', async () => {
    const { fast, fastRegistry } = pair();
    fast.observe(5);
    fast.add(50);
    let text = await fastRegistry.metrics();
    expect(text).toContain('h_seconds_count 2');
    expect(text).toContain('h_seconds_sum 55');
    expect(text).toContain('h_seconds_bucket{le="10"} 1');
    expect(() => fast.observe(Number.NaN)).toThrow(TypeError);
    fast.reset();
    text = await fastRegistry.metrics();
    expect(text).toContain('h_seconds_count 0');
  });
});
