/**
 * Property tests: (a) equal streams cut differently compare equal and the primary's segments go out whole and
 * in order; (b) one changed byte gives exactly one checkpoint request at the right offset; (c) random and
 * mutated frames never throw and every frame is accounted for.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CompareEngine } from '../../compare/engine.js';
import type { Side } from '../../compare/types.js';
import { buildArp, buildIcmp, buildIcmpv6, buildTcp, buildUdp } from '../support/wire-build.js';
import { Harness, tcp, udp } from './support.js';
import { cut } from '../support/stream-cuts.js';

// COLO_FC_RUNS=5000 for a longer search than the default 100 runs per property.
fc.configureGlobal({ numRuns: Number(process.env.COLO_FC_RUNS ?? 100) });

/**
 * Each side's segments: the first stays first (a stream's origin is its first-seen segment), the rest come in
 * the arbitrary order given by `order`; the two sides are interleaved as `interleave` says.
 */
function schedule<T>(primary: T[], secondary: T[], order: number[], interleave: boolean[]): [Side, T][] {
  const shuffle = (items: T[]) => {
    const rest = items.slice(1);
    const keyed = rest.map((item, i) => ({ item, key: order[i % Math.max(order.length, 1)] ?? 0, i }));
    keyed.sort((a, b) => a.key - b.key || a.i - b.i);
    return [items[0], ...keyed.map((k) => k.item)];
  };
  const p = shuffle(primary);
  const s = shuffle(secondary);
  const out: [Side, T][] = [];
  let i = 0;
  while (p.length > 0 || s.length > 0) {
    const takePrimary = s.length === 0 || (p.length > 0 && (interleave[i++ % Math.max(interleave.length, 1)] ?? true));
    out.push(takePrimary ? ['primary', p.shift()!] : ['secondary', s.shift()!]);
  }
  return out;
}

const P_ISN = 0xfffff000; // close to the wrap, so offsets cross it
const S_ISN = 12345;

const streamCase = fc.record({
  stream: fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => Buffer.from(a)),
  primaryCuts: fc.array(fc.nat(), { maxLength: 12 }),
  secondaryCuts: fc.array(fc.nat(), { maxLength: 12 }),
  order: fc.array(fc.nat(), { maxLength: 12 }),
  interleave: fc.array(fc.boolean(), { maxLength: 30 }),
});

describe('properties', () => {
  it('(a) a stream cut differently on each side compares equal; primary segments are released whole and in order', () => {
    fc.assert(
      fc.property(streamCase, ({ stream, primaryCuts, secondaryCuts, order, interleave }) => {
        const h = new Harness();
        const primary = cut(stream, primaryCuts).map((s) => tcp((P_ISN + s.offset) >>> 0, s.bytes));
        const secondary = cut(stream, secondaryCuts).map((s) => tcp((S_ISN + s.offset) >>> 0, s.bytes));
        for (const [side, frame] of schedule(primary, secondary, order, interleave)) h.push(side, frame);
        expect(h.divergences).toEqual([]);
        expect(h.releasedFrames).toEqual(primary);
        expect(h.dropped).toHaveLength(secondary.length);
      }),
    );
  });

  it('(b) one changed byte in a TCP stream gives exactly one checkpoint request at its offset', () => {
    fc.assert(
      fc.property(streamCase, fc.nat(), fc.integer({ min: 1, max: 255 }), (c, at, delta) => {
        const position = at % c.stream.length;
        const changed = Buffer.from(c.stream);
        changed[position] = (changed[position] + delta) & 255;
        const h = new Harness();
        const primary = cut(c.stream, c.primaryCuts).map((s) => tcp((P_ISN + s.offset) >>> 0, s.bytes));
        const secondary = cut(changed, c.secondaryCuts).map((s) => tcp((S_ISN + s.offset) >>> 0, s.bytes));
        for (const [side, frame] of schedule(primary, secondary, c.order, c.interleave)) h.push(side, frame);
        expect(h.divergences).toHaveLength(1);
        expect(h.divergences[0]).toMatchObject({ reason: 'payload', offset: position });
        // Nothing at or after the difference went out.
        const releasedBytes = h.released.reduce((n, p) => n + p.frame.length - 54, 0);
        expect(releasedBytes).toBeLessThanOrEqual(position);
      }),
    );
  });

  it('(b) one changed byte in a datagram gives exactly one checkpoint request at its payload offset', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 1400 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (bytes, at, delta) => {
          const payload = Buffer.from(bytes);
          const position = at % payload.length;
          const changed = Buffer.from(payload);
          changed[position] = (changed[position] + delta) & 255;
          const h = new Harness();
          h.primary(udp(payload));
          h.secondary(udp(changed));
          h.primary(udp(payload));
          h.secondary(udp(payload));
          expect(h.divergences).toHaveLength(1);
          expect(h.divergences[0]).toMatchObject({ reason: 'payload', offset: position });
          expect(h.released).toEqual([]);
        },
      ),
    );
  });

  it('(c) random and mutated frames never throw, and every frame is accounted for', () => {
    const seeds = [
      tcp(1, 'hello world'),
      tcp(1, 'v6', { src: 'fd00::2', dst: 'fd00::1' }),
      tcp(5, 'tagged', { vlanId: 3, flags: 0x19 }),
      buildTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0x02 }),
      udp('datagram'),
      buildUdp({ src: 'fd00::2', dst: 'fd00::1', srcPort: 1, dstPort: 2, payload: 'x', moreFragments: true }),
      buildIcmp({ src: '10.0.0.2', dst: '10.0.0.1', id: 1, seq: 1, payload: 'ping' }),
      buildIcmpv6({ src: 'fd00::2', dst: 'fd00::1', id: 1, seq: 1, payload: 'ping' }),
      buildArp({ operation: 2, senderIp: '10.0.0.2', targetIp: '10.0.0.1' }),
    ];
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc
        .record({
          seed: fc.constantFrom(...seeds),
          edits: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }),
          keep: fc.nat(),
        })
        .map(({ seed, edits, keep }) => {
          const copy = Buffer.from(seed);
          for (const [at, value] of edits) copy[at % copy.length] = value;
          return copy.subarray(0, keep % (copy.length + 1));
        }),
    );
    const step = fc.oneof(
      { weight: 8, arbitrary: fc.tuple(fc.constantFrom<Side>('primary', 'secondary'), frame) },
      { weight: 1, arbitrary: fc.constantFrom('tick' as const, 'flush' as const) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const engine = new CompareEngine({ maxQueueSize: 4, maxConnections: 4, compareTimeoutMs: 5 });
        const pushed = { primary: 0, secondary: 0 };
        const done = { primary: 0, secondary: 0 };
        let now = 0;
        for (const s of steps) {
          now += 2;
          const d =
            s === 'tick' ? engine.tick(now) : s === 'flush' ? engine.flush(now) : engine.push(s[0], s[1], 0, now);
          if (Array.isArray(s)) pushed[s[0]]++;
          done.primary += d.release.length + d.malformed.filter((m) => m.side === 'primary').length;
          done.secondary += d.drop.length + d.malformed.filter((m) => m.side === 'secondary').length;
          expect(d.release.every((p) => p.side === 'primary')).toBe(true);
          expect(d.drop.every((p) => p.side === 'secondary')).toBe(true);
        }
        const stats = engine.stats();
        expect(done.primary + stats.heldPrimaryPackets).toBe(pushed.primary);
        expect(done.secondary + stats.heldSecondaryPackets).toBe(pushed.secondary);
        const flushed = engine.flush(now);
        expect(done.primary + flushed.release.length).toBe(pushed.primary);
        expect(done.secondary + flushed.drop.length).toBe(pushed.secondary);
      }),
    );
  });
});
