/**
 * TCP comparison: the behaviours of reference section 1.5 (and the TCP parts of 1.4). Each test says whether
 * we match QEMU or deliberately differ, and why (docs/qemu-differences.md has the table).
 */
import { describe, expect, it } from 'vitest';
import { ACK, FIN, Harness, PSH, RST, SYN, tcp } from './support.js';

/** Secondary segments carry another ISN: the proxy may not have rewritten them yet, and alignment must not care. */
const S_ISN_SHIFT = 50000;
const sec = (seq: number, payload: string | Buffer = '', over = {}) => tcp(seq + S_ISN_SHIFT, payload, over);

describe('TCP stream comparison', () => {
  it('releases the primary and drops the secondary when the bytes are equal (matches QEMU, exact case)', () => {
    const h = new Harness();
    const p = tcp(1, 'hello');
    expect(h.primary(p).released).toEqual([]);
    const out = h.secondary(sec(1, 'hello'));
    expect(out.released.map((r) => r.frame)).toEqual([p]);
    expect(out.dropped).toHaveLength(1);
    expect(h.engine.stats().heldPrimaryPackets).toBe(0);
  });

  it('aligns by offset in each side’s own stream: another ISN with the same bytes matches (matches QEMU)', () => {
    const h = new Harness();
    h.primary(tcp(1000, 'abc'));
    h.secondary(tcp(777777, 'abc'));
    h.primary(tcp(1003, 'def'));
    h.secondary(tcp(777780, 'def'));
    expect(h.released).toHaveLength(2);
    expect(h.divergences).toEqual([]);
  });

  it('matches 1 primary segment against 2 secondary segments (matches QEMU)', () => {
    const h = new Harness();
    const p = tcp(1, 'abcdef');
    h.primary(p);
    expect(h.secondary(sec(1, 'abc')).released).toEqual([]);
    expect(h.secondary(sec(4, 'def')).released.map((r) => r.frame)).toEqual([p]);
    expect(h.dropped).toHaveLength(2);
  });

  it('matches 2 primary segments against 1 secondary segment (matches QEMU)', () => {
    const h = new Harness();
    const p1 = tcp(1, 'abc');
    const p2 = tcp(4, 'def');
    h.primary(p1);
    h.primary(p2);
    const out = h.secondary(sec(1, 'abcdef'));
    expect(out.released.map((r) => r.frame)).toEqual([p1, p2]);
    expect(out.dropped).toHaveLength(1);
  });

  it('releases out-of-order primary segments in sequence order (matches QEMU)', () => {
    const h = new Harness();
    const p1 = tcp(1, 'abc');
    const p2 = tcp(4, 'def');
    h.primary(p2);
    h.primary(p1);
    h.secondary(sec(1, 'abcdef'));
    expect(h.releasedFrames).toEqual([p1, p2]);
  });

  it('waits at a gap instead of comparing across it (differs: QEMU aligns by consumed bytes, not sequence numbers)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc'));
    h.primary(tcp(7, 'ghi'));
    h.secondary(sec(1, 'abc'));
    h.secondary(sec(7, 'ghi'));
    expect(h.released).toHaveLength(1);
    h.primary(tcp(4, 'def'));
    expect(h.released).toHaveLength(1);
    h.secondary(sec(4, 'def'));
    expect(h.released).toHaveLength(3);
    expect(h.divergences).toEqual([]);
  });

  it('releases a retransmission of compared bytes without comparing again (matches QEMU)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc'));
    h.secondary(sec(1, 'abc'));
    // Different bytes on purpose: they were already compared, so they are not looked at again.
    const retransmit = tcp(1, 'xyz');
    expect(h.primary(retransmit).released.map((r) => r.frame)).toEqual([retransmit]);
    expect(h.secondary(sec(1, 'abc')).dropped).toHaveLength(1);
    expect(h.divergences).toEqual([]);
  });

  it('reports a payload difference at the stream offset of the first differing byte (differs: QEMU records no offset)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'hello '));
    h.secondary(sec(1, 'hello '));
    h.primary(tcp(7, 'world'));
    const out = h.secondary(sec(7, 'wOrld'));
    expect(out.divergences).toHaveLength(1);
    const [d] = out.divergences;
    expect(d.reason).toBe('payload');
    expect(d.offset).toBe(7);
    expect(d.connection).toMatchObject({ protocol: 'tcp', family: 4, src: '10.0.0.2', srcPort: 80, dstPort: 40000 });
    expect(d.primary?.frame).toEqual(tcp(7, 'world'));
  });

  it('asks for ONE checkpoint per diverged connection and then holds it (differs: QEMU notifies on every enqueue)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc'));
    h.secondary(sec(1, 'abX'));
    h.primary(tcp(4, 'def'));
    h.secondary(sec(4, 'def'));
    h.primary(tcp(7, 'ghi'));
    expect(h.divergences).toHaveLength(1);
    expect(h.released).toEqual([]);
    const flushed = h.flush();
    expect(flushed.released.map((p) => p.frame)).toEqual([tcp(1, 'abc'), tcp(4, 'def'), tcp(7, 'ghi')]);
    expect(flushed.dropped).toHaveLength(1); // the held abX; later secondaries were dropped as they came
    expect(h.engine.stats().heldPrimaryPackets).toBe(0);
    expect(h.engine.stats().heldSecondaryPackets).toBe(0);
  });

  it('resumes cleanly after a flush, even with another secondary sequence base (differs: QEMU keeps per-connection state across a flush)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc'));
    h.secondary(sec(1, 'abX'));
    h.flush();
    h.primary(tcp(4, 'def'));
    h.secondary(tcp(999, 'def'));
    expect(h.divergences).toHaveLength(1);
    expect(h.released.at(-1)?.frame).toEqual(tcp(4, 'def'));
  });

  it('ignores header fields: window, options (timestamps), TTL and IP ID may differ (matches QEMU)', () => {
    const h = new Harness();
    h.primary(
      tcp(1, 'data', { window: 100, ttl: 64, ipId: 1, options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]) }),
    );
    h.secondary(
      sec(1, 'data', { window: 9999, ttl: 63, ipId: 77, options: Buffer.from([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8]) }),
    );
    expect(h.released).toHaveLength(1);
    expect(h.divergences).toEqual([]);
  });

  it('does not count Ethernet padding as payload (differs: QEMU compares the padding against stream bytes)', () => {
    const h = new Harness();
    const p1 = tcp(1, 'ab', { padTo: 60 });
    const p2 = tcp(3, 'cd', { padTo: 60 });
    h.primary(p1);
    h.primary(p2);
    h.secondary(sec(1, 'abcd'));
    expect(h.releasedFrames).toEqual([p1, p2]);
    expect(h.divergences).toEqual([]);
  });
});

describe('TCP flags', () => {
  it('compares SYN with SYN at the same offset (differs: QEMU releases SYN without looking at flags)', () => {
    const h = new Harness();
    const synAck = tcp(5000, '', { flags: SYN | ACK });
    h.primary(synAck);
    h.secondary(tcp(80000, '', { flags: SYN | ACK }));
    expect(h.releasedFrames).toEqual([synAck]);
    // Data starts at stream offset 0 after the SYN: a difference in its first byte is reported at 0.
    h.primary(tcp(5001, 'x'));
    const out = h.secondary(tcp(80001, 'y'));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: 0 });
  });

  it("reports 'flags' when only one side sends a SYN (differs: QEMU ignores flags)", () => {
    const h = new Harness();
    h.primary(tcp(5000, '', { flags: SYN | ACK }));
    const out = h.secondary(tcp(80000, 'data', { flags: ACK | PSH }));
    expect(out.divergences).toHaveLength(1);
    expect(out.divergences[0].reason).toBe('flags');
  });

  it('matches FIN with FIN after equal data, also when one side piggybacks it on data (differs: QEMU ignores FIN)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'bye'));
    h.primary(tcp(4, '', { flags: FIN | ACK }));
    h.secondary(sec(1, 'bye', { flags: FIN | ACK }));
    expect(h.released).toHaveLength(2);
    expect(h.divergences).toEqual([]);
  });

  it("reports 'flags' when the secondary sends FIN where the primary sends more data (differs: QEMU ignores flags)", () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc'));
    h.primary(tcp(4, 'def'));
    h.secondary(sec(1, 'abc', { flags: FIN | ACK }));
    expect(h.divergences).toHaveLength(1);
    expect(h.divergences[0]).toMatchObject({ reason: 'flags', offset: 3 });
    expect(h.released).toHaveLength(1); // abc was equal and went out before the difference
  });

  it('releases a RST matched by a RST at the same offset (differs: QEMU releases a RST without comparing)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc'));
    h.secondary(sec(1, 'abc'));
    const rst = tcp(4, '', { flags: RST | ACK });
    h.primary(rst);
    expect(h.released).toHaveLength(1);
    h.secondary(sec(4, '', { flags: RST | ACK }));
    expect(h.released.at(-1)?.frame).toEqual(rst);
    expect(h.divergences).toEqual([]);
  });

  it("reports 'flags' for a RST on the primary where the secondary sends data (differs: QEMU ignores flags)", () => {
    const h = new Harness();
    h.primary(tcp(1, '', { flags: RST | ACK }));
    const out = h.secondary(sec(1, 'data'));
    expect(out.divergences[0]).toMatchObject({ reason: 'flags', offset: 0 });
  });
});

describe('TCP acknowledgements (min-ack rule)', () => {
  it('holds bytes that match until the secondary has acked as much (differs: QEMU checkpoints at once)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'abc', { ack: 2000 }));
    h.secondary(sec(1, 'abc', { ack: 1500 }));
    expect(h.released).toEqual([]);
    expect(h.divergences).toEqual([]);
    // A secondary pure ACK carries the missing acknowledgement and releases the primary.
    const out = h.secondary(sec(4, '', { ack: 2000 }));
    expect(out.released).toHaveLength(1);
    expect(out.dropped).toHaveLength(2); // the pure ACK itself, and the compared secondary 'abc'
  });

  it('uses the highest secondary ack, not the last (differs: QEMU tracks the last-enqueued ack)', () => {
    const h = new Harness();
    h.secondary(sec(1, '', { ack: 2000 }));
    h.secondary(sec(1, '', { ack: 1500 })); // an older segment arriving late
    h.primary(tcp(1, 'abc', { ack: 2000 }));
    h.secondary(sec(1, 'abc', { ack: 1500 }));
    expect(h.released).toHaveLength(1);
  });

  it('handles acks across the 32-bit wrap (differs: QEMU takes a plain unsigned minimum of the acks)', () => {
    const h = new Harness();
    h.secondary(sec(1, '', { ack: 0xfffffff0 }));
    h.secondary(sec(1, '', { ack: 0x10 })); // past the wrap: higher
    h.primary(tcp(1, 'abc', { ack: 0x08 }));
    h.secondary(sec(1, 'abc', { ack: 0xfffffff0 }));
    expect(h.released).toHaveLength(1);
  });

  it('releases a primary pure ACK once the secondary acked as much, with no data to compare (differs: QEMU waits for any secondary packet)', () => {
    const h = new Harness();
    const pureAck = tcp(1, '', { ack: 3000 });
    expect(h.primary(pureAck).released).toEqual([]);
    expect(h.secondary(sec(1, '', { ack: 2999 })).released).toEqual([]);
    expect(h.secondary(sec(1, '', { ack: 3000 })).released.map((p) => p.frame)).toEqual([pureAck]);
  });

  it("turns an ack wait that outlasts compare_timeout into one 'ack' checkpoint request", () => {
    const h = new Harness({ compareTimeoutMs: 100 });
    h.primary(tcp(1, 'abc', { ack: 2000 }));
    h.secondary(sec(1, 'abc', { ack: 1000 }));
    expect(h.tick(50).divergences).toEqual([]);
    const out = h.tick(101);
    expect(out.divergences).toHaveLength(1);
    expect(out.divergences[0]).toMatchObject({ reason: 'ack', offset: null });
    expect(out.released).toEqual([]);
  });
});

describe('TCP secondary leftovers', () => {
  it('drops a fully compared secondary at once, so it never ages into a timeout (differs from QEMU)', () => {
    const h = new Harness({ compareTimeoutMs: 100 });
    h.primary(tcp(1, 'ab'));
    h.primary(tcp(3, 'cd'));
    h.secondary(sec(1, 'abcd'));
    expect(h.engine.stats().heldSecondaryPackets).toBe(0);
    expect(h.tick(1000).divergences).toEqual([]);
  });

  it('times out secondary data the primary never sends (matches QEMU: the stale scan looks at both queues)', () => {
    const h = new Harness({ compareTimeoutMs: 100 });
    h.secondary(sec(1, 'extra'));
    const out = h.tick(200);
    expect(out.divergences).toHaveLength(1);
    expect(out.divergences[0]).toMatchObject({ reason: 'timeout', offset: null });
    expect(out.divergences[0].secondary?.side).toBe('secondary');
  });
});

describe('long streams', () => {
  it('keeps offsets right past 2^30 compared units (QEMU keeps only a 32-bit compare_seq and reports no offsets)', () => {
    const h = new Harness();
    h.primary(tcp(1, 'a'));
    h.secondary(sec(1, 'a'));
    // Pretend 2^30 + 10 units were compared, by moving the connection's frontier as comparison would.
    const conn = h.engine['table'].first()!;
    const ahead = 2 ** 30 + 10;
    conn.matched += ahead - 1;
    const pSeq = (1 + ahead) >>> 0;
    h.primary(tcp(pSeq, 'xyz'));
    const out = h.secondary(sec(pSeq, 'xyZ'));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', offset: ahead + 2 });
    expect(conn.matched).toBeLessThan(2 ** 30);
  });
});
