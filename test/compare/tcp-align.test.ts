/**
 * TCP alignment after a flush (docs/compare.md, "TCP alignment after a checkpoint"). With 'sequence' the
 * secondary's segments (already in the primary's sequence space, as the inline proxy's rewriter delivers them)
 * are placed by sequence number against the primary's position at the flush; with 'next-segment' (the default,
 * QEMU's assumption) each side restarts at its own next segment.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import type { Side } from '../../compare/types.js';
import { ACK, FIN, Harness, SYN, tcp } from './support.js';
import { cut } from '../support/stream-cuts.js';

fc.configureGlobal({ numRuns: Number(process.env.COLO_FC_RUNS ?? 100) });

const aligned = (): Harness => new Harness({ tcpAlignAfterFlush: 'sequence' });

function counters(h: Harness) {
  const { tcpSecondaryResendsDropped, tcpUnverifiedSegments, tcpUnverifiedBytes, tcpStreamRestarts } = h.engine.stats();
  return { tcpSecondaryResendsDropped, tcpUnverifiedSegments, tcpUnverifiedBytes, tcpStreamRestarts };
}

describe("TCP alignment after a flush: 'sequence'", () => {
  it('is an engine option; the default stays next-segment (what the QEMU differential suite pins)', () => {
    expect(new CompareEngine().options.tcpAlignAfterFlush).toBe('next-segment');
    expect(aligned().engine.options.tcpAlignAfterFlush).toBe('sequence');
    expect(() => new CompareEngine({ tcpAlignAfterFlush: 'bytes' as never })).toThrow(/tcpAlignAfterFlush/);
  });

  it('secondary behind: its resend of bytes the flush released is dropped (counted), the stream compares on', () => {
    for (const mode of ['sequence', 'next-segment'] as const) {
      const h = new Harness({ tcpAlignAfterFlush: mode });
      h.primary(tcp(1, 'abc'));
      h.primary(tcp(4, 'def'));
      h.secondary(tcp(1, 'abc'));
      // The checkpoint comes before the secondary sent 'def': the flush releases the primary's.
      expect(h.flush().released.map((p) => p.frame)).toEqual([tcp(4, 'def')]);
      h.secondary(tcp(4, 'def'));
      h.primary(tcp(7, 'ghi'));
      h.secondary(tcp(7, 'ghi'));
      if (mode === 'next-segment') {
        // The storm: 'def' becomes the secondary's offset 0 against the primary's 'ghi'.
        expect(h.divergences.map((d) => d.reason)).toEqual(['payload']);
        continue;
      }
      expect(h.divergences).toEqual([]);
      expect(h.releasedFrames).toEqual([tcp(1, 'abc'), tcp(4, 'def'), tcp(7, 'ghi')]);
      expect(h.dropped).toHaveLength(3);
      expect(counters(h)).toMatchObject({ tcpSecondaryResendsDropped: 1, tcpUnverifiedSegments: 0 });
    }
  });

  it('secondary behind: a resend below the frontier is not compared (its bytes already went out)', () => {
    const h = aligned();
    h.primary(tcp(1, 'abcdef'));
    h.flush();
    expect(h.secondary(tcp(1, 'XXXXXX')).dropped).toHaveLength(1);
    expect(h.divergences).toEqual([]);
    expect(counters(h).tcpSecondaryResendsDropped).toBe(1);
  });

  it('secondary ahead: primary bytes it sent before the flush are released unverified (counted), the rest compared', () => {
    const h = aligned();
    h.primary(tcp(1, 'abc'));
    h.secondary(tcp(1, 'abcdef'));
    h.flush();
    // The secondary will not send 'def' again; the primary's goes out without waiting for it.
    const out = h.primary(tcp(4, 'def'));
    expect(out.released.map((p) => p.frame)).toEqual([tcp(4, 'def')]);
    expect(counters(h)).toMatchObject({ tcpUnverifiedSegments: 1, tcpUnverifiedBytes: 3 });
    // Past the secondary's position at the flush, bytes are compared again: a difference is reported.
    h.primary(tcp(7, 'ghi'));
    expect(h.secondary(tcp(7, 'ghi')).released).toHaveLength(1);
    h.primary(tcp(10, 'jkl'));
    const diverged = h.secondary(tcp(10, 'jkL'));
    // Offsets count from the flush point (the primary's position then: seq 4).
    expect(diverged.divergences[0]).toMatchObject({ reason: 'payload', offset: 8 });
    expect(counters(h)).toMatchObject({ tcpUnverifiedSegments: 1, tcpUnverifiedBytes: 3 });
  });

  it('secondary ahead: the unverified primary bytes do not wait for a new ack (the highest ack is kept)', () => {
    const h = aligned();
    h.primary(tcp(1, 'abc', { ack: 500 }));
    h.secondary(tcp(1, 'abcdef', { ack: 500 }));
    h.flush();
    expect(h.primary(tcp(4, 'def', { ack: 500 })).released).toHaveLength(1);
    // A primary acking more than the secondary ever did still waits (the min-ack rule holds).
    expect(h.primary(tcp(7, 'ghi', { ack: 501 })).released).toEqual([]);
    expect(h.secondary(tcp(7, 'ghi', { ack: 501 })).released).toHaveLength(1);
  });

  it('equal positions: nothing skipped, nothing dropped as behind, comparison goes on', () => {
    const h = aligned();
    h.primary(tcp(1, 'abc'));
    h.secondary(tcp(1, 'abc'));
    h.flush();
    h.primary(tcp(4, 'def'));
    h.secondary(tcp(4, 'dXf'));
    expect(h.divergences[0]).toMatchObject({ reason: 'payload', offset: 1 });
    expect(counters(h)).toEqual({
      tcpSecondaryResendsDropped: 0,
      tcpUnverifiedSegments: 0,
      tcpUnverifiedBytes: 0,
      tcpStreamRestarts: 0,
    });
  });

  it('partial overlap, secondary behind: only the part above the frontier is compared', () => {
    const h = aligned();
    h.primary(tcp(1, 'abcdef'));
    h.secondary(tcp(1, 'ab'));
    h.flush();
    // 'cdef' below the frontier went out at the flush: not compared (even though it differs here).
    h.secondary(tcp(3, 'XXXXgh'));
    expect(h.primary(tcp(7, 'gh')).released.map((p) => p.frame)).toEqual([tcp(7, 'gh')]);
    h.primary(tcp(9, 'ij'));
    expect(h.secondary(tcp(9, 'iJ')).divergences[0]).toMatchObject({ reason: 'payload', offset: 3 });
    expect(counters(h).tcpSecondaryResendsDropped).toBe(0);
  });

  it('partial overlap, secondary ahead: a primary segment across its position is half unverified, half compared', () => {
    const h = aligned();
    h.primary(tcp(1, 'ab'));
    h.secondary(tcp(1, 'abcde'));
    h.flush();
    const straddling = tcp(3, 'cdefgh');
    expect(h.primary(straddling).released).toEqual([]);
    expect(counters(h)).toMatchObject({ tcpUnverifiedSegments: 1, tcpUnverifiedBytes: 3 });
    expect(h.secondary(tcp(6, 'fgh')).released.map((p) => p.frame)).toEqual([straddling]);
    const h2 = aligned();
    h2.primary(tcp(1, 'ab'));
    h2.secondary(tcp(1, 'abcde'));
    h2.flush();
    h2.primary(tcp(3, 'cdefgh'));
    expect(h2.secondary(tcp(6, 'fgX')).divergences[0]).toMatchObject({ reason: 'payload', offset: 5 });
  });

  it('a secondary resend of what it sent before the flush is dropped, not compared (it cannot hold the primary)', () => {
    const h = aligned();
    h.primary(tcp(1, 'ab'));
    h.secondary(tcp(1, 'abcdef'));
    h.flush();
    // Its kernel resends unacknowledged bytes; had they to wait for the primary's, a stream that really
    // differs in length (the lab's nondeterministic guest) would time out on every resend.
    expect(h.secondary(tcp(3, 'cD')).dropped).toHaveLength(1);
    expect(h.primary(tcp(3, 'cdef')).released).toHaveLength(1);
    h.primary(tcp(7, 'gh'));
    expect(h.secondary(tcp(5, 'efgX')).divergences[0]).toMatchObject({ reason: 'payload', offset: 5 });
    expect(counters(h)).toMatchObject({ tcpSecondaryResendsDropped: 1, tcpUnverifiedBytes: 4 });
  });

  it('works across the 32-bit wrap, behind and ahead', () => {
    const isn = 0xfffffffd;
    const behind = aligned();
    behind.primary(tcp(isn, 'abcdef')); // crosses the wrap
    behind.secondary(tcp(isn, 'ab'));
    behind.flush();
    behind.secondary(tcp(isn + 2, 'cdef'));
    behind.primary(tcp((isn + 6) >>> 0, 'ghi'));
    behind.secondary(tcp((isn + 6) >>> 0, 'ghi'));
    expect(behind.divergences).toEqual([]);
    expect(behind.released).toHaveLength(2);
    expect(counters(behind).tcpSecondaryResendsDropped).toBe(1);

    const ahead = aligned();
    ahead.primary(tcp(isn, 'ab'));
    ahead.secondary(tcp(isn, 'abcdef'));
    ahead.flush();
    expect(ahead.primary(tcp((isn + 2) >>> 0, 'cdef')).released).toHaveLength(1);
    ahead.primary(tcp((isn + 6) >>> 0, 'ghi'));
    expect(ahead.secondary(tcp((isn + 6) >>> 0, 'gXi')).divergences[0]).toMatchObject({ offset: 5 });
    expect(counters(ahead)).toMatchObject({ tcpUnverifiedSegments: 1, tcpUnverifiedBytes: 4 });
  });

  it('SYN after a flush: a resent SYN|ACK is behind and dropped; the data then compares from the SYN', () => {
    const h = aligned();
    const synAck = tcp(5000, '', { flags: SYN | ACK });
    h.primary(synAck);
    h.flush(); // the checkpoint fell inside the handshake
    expect(h.secondary(tcp(5000, '', { flags: SYN | ACK })).dropped).toHaveLength(1);
    h.primary(tcp(5001, 'hello'));
    h.secondary(tcp(5001, 'hello'));
    expect(h.releasedFrames).toEqual([synAck, tcp(5001, 'hello')]);
    expect(counters(h)).toMatchObject({ tcpSecondaryResendsDropped: 1, tcpStreamRestarts: 0 });
  });

  it('SYN after a flush with a new sequence number (the 4-tuple reused): a new stream, compared from its start', () => {
    const h = aligned();
    h.primary(tcp(5000, '', { flags: SYN | ACK }));
    h.secondary(tcp(5000, '', { flags: SYN | ACK }));
    h.primary(tcp(5001, 'old', { flags: FIN | ACK }));
    h.secondary(tcp(5001, 'old', { flags: FIN | ACK }));
    h.flush();
    // Far below the old stream: without the restart it would count as a resend and go out uncompared.
    const newSyn = tcp(1000, '', { flags: SYN | ACK });
    h.primary(newSyn);
    expect(h.released.at(-1)?.frame).not.toEqual(newSyn);
    h.secondary(tcp(1000, '', { flags: SYN | ACK }));
    expect(h.released.at(-1)?.frame).toEqual(newSyn);
    h.primary(tcp(1001, 'new'));
    expect(h.secondary(tcp(1001, 'nEw')).divergences[0]).toMatchObject({ reason: 'payload', offset: 1 });
    expect(counters(h).tcpStreamRestarts).toBe(1);
  });

  it('FIN after a flush: compared at the same sequence number, or released unverified if the secondary sent it before', () => {
    const both = aligned();
    both.primary(tcp(1, 'abc'));
    both.secondary(tcp(1, 'a'));
    both.flush();
    both.secondary(tcp(2, 'bc'));
    const fin = tcp(4, '', { flags: FIN | ACK });
    both.primary(fin);
    expect(both.secondary(tcp(4, '', { flags: FIN | ACK })).released.map((p) => p.frame)).toEqual([fin]);
    expect(both.divergences).toEqual([]);

    const ahead = aligned();
    ahead.primary(tcp(1, 'abc'));
    ahead.secondary(tcp(1, 'abc', { flags: FIN | ACK }));
    ahead.flush();
    expect(ahead.primary(fin).released.map((p) => p.frame)).toEqual([fin]);
    expect(counters(ahead)).toMatchObject({ tcpUnverifiedSegments: 1, tcpUnverifiedBytes: 1 });

    const missing = aligned();
    missing.primary(tcp(1, 'abc'));
    missing.secondary(tcp(1, 'abc'));
    missing.flush();
    missing.primary(fin);
    // The secondary sends more data where the primary closes: still a divergence after the flush.
    expect(missing.secondary(tcp(4, 'more')).divergences[0]).toMatchObject({ reason: 'flags' });
  });

  it('a secondary whose stream really is longer stays ahead: its unmatched close times out once, then resends drop', () => {
    // The lab's nondeterministic guest: its reply is longer, and its kernel is not reset by the checkpoint.
    const h = new Harness({ tcpAlignAfterFlush: 'sequence', compareTimeoutMs: 3000 });
    h.primary(tcp(1, '1\n'));
    h.secondary(tcp(1, '1 ~abcdef\n'));
    expect(h.divergences.map((d) => d.reason)).toEqual(['payload']);
    h.flush();
    // The next reply and the close: the primary's lie inside the secondary's lead (released unverified); the
    // secondary's, 8 bytes further on, are never matched and age into one 'timeout' checkpoint.
    const bye = tcp(3, 'BYE\n', { flags: FIN | ACK });
    expect(h.primary(bye).released.map((p) => p.frame)).toEqual([bye]);
    h.secondary(tcp(11, 'BYE\n', { flags: FIN | ACK }));
    expect(h.tick(3500).divergences.map((d) => d.reason)).toEqual(['timeout']);
    h.flush();
    // Its kernel resends the unacknowledged tail: below what it sent before the flush, dropped at once.
    expect(h.secondary(tcp(3, '~abcdef\nBYE\n', { flags: FIN | ACK })).dropped).toHaveLength(1);
    expect(h.tick(8000).divergences).toEqual([]);
    expect(counters(h)).toMatchObject({
      tcpUnverifiedSegments: 1,
      tcpUnverifiedBytes: 5,
      tcpSecondaryResendsDropped: 1,
    });
  });

  it('a flush before the primary sent anything: the first segment sets the shared base', () => {
    const h = aligned();
    h.secondary(tcp(1, 'abcdef'));
    h.flush();
    // The secondary's lead (6 bytes) is released unverified; from seq 7 on the two are compared.
    expect(h.primary(tcp(1, 'abcdef')).released).toHaveLength(1);
    h.primary(tcp(7, 'gh'));
    expect(h.secondary(tcp(7, 'gX')).divergences[0]).toMatchObject({ reason: 'payload' });
    expect(counters(h)).toMatchObject({ tcpUnverifiedBytes: 6 });
  });
});

const ISN = 0xfffff800; // close to the wrap, so streams cross it

describe("property: 'sequence' alignment across flushes", () => {
  it('any cut on either side, any interleaving, any flush points: no divergence, every primary byte released once, in order', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 4000 }).map((a) => Buffer.from(a)),
        fc.array(fc.nat(), { maxLength: 16 }),
        fc.array(fc.nat(), { maxLength: 16 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
        (stream, primaryCuts, secondaryCuts, interleave, flushAt) => {
          const h = aligned();
          const primary = cut(stream, primaryCuts).map((s) => tcp((ISN + s.offset) >>> 0, s.bytes));
          const secondary = cut(stream, secondaryCuts).map((s) => tcp((ISN + s.offset) >>> 0, s.bytes));
          const steps: [Side, Buffer][] = [];
          const p = [...primary];
          const s = [...secondary];
          for (let i = 0; p.length > 0 || s.length > 0; i++) {
            const takePrimary =
              s.length === 0 || (p.length > 0 && (interleave[i % Math.max(interleave.length, 1)] ?? true));
            steps.push(takePrimary ? ['primary', p.shift()!] : ['secondary', s.shift()!]);
          }
          const flushes = new Set(flushAt.map((f) => f % (steps.length + 1)));
          steps.forEach(([side, frame], i) => {
            if (flushes.has(i)) h.flush();
            h.push(side, frame);
          });
          expect(h.divergences).toEqual([]);
          expect(h.releasedFrames).toEqual(primary);
          expect(Buffer.concat(h.released.map((r) => r.frame.subarray(54)))).toEqual(stream);
          expect(h.dropped).toHaveLength(secondary.length);
          const stats = h.engine.stats();
          expect(stats.heldPrimaryPackets + stats.heldSecondaryPackets).toBe(0);
        },
      ),
    );
  });
});
