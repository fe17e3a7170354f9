/**
 * When the engine asks for a checkpoint and what flush does: reference sections 1.4 (queue limit) and 1.7
 * (notify, timers, release). Each test says whether we match QEMU or deliberately differ, and why.
 */
import { describe, expect, it } from 'vitest';
import { CompareEngine, defaultCompareOptions } from '../../compare/engine.js';
import { Harness, tcp, udp } from './support.js';

describe('options', () => {
  it('defaults to QEMU’s compare_timeout 3000, expired_scan_cycle 1000 (the real default, not the documented 3000) and max_queue_size 1024', () => {
    expect(defaultCompareOptions).toMatchObject({
      compareTimeoutMs: 3000,
      expiredScanCycleMs: 1000,
      maxQueueSize: 1024,
    });
    expect(new CompareEngine({ maxQueueSize: 5 }).options.maxQueueSize).toBe(5);
  });

  it('rejects a non-positive option at construction (matches QEMU: compare_timeout must be > 0)', () => {
    expect(() => new CompareEngine({ compareTimeoutMs: 0 })).toThrow(/compareTimeoutMs/);
  });
});

describe('queue limit', () => {
  it("asks for an 'overflow' checkpoint and keeps the packet (differs: QEMU drops it and never sends it)", () => {
    const h = new Harness({ maxQueueSize: 5 });
    const frames = [0, 1, 2, 3, 4, 5].map((i) => tcp(1 + i, 'x'));
    for (const f of frames.slice(0, 5)) expect(h.primary(f).divergences).toEqual([]);
    const out = h.primary(frames[5]);
    expect(out.divergences).toHaveLength(1);
    expect(out.divergences[0]).toMatchObject({ reason: 'overflow', offset: null });
    h.primary(tcp(7, 'x'));
    expect(h.divergences).toHaveLength(1);
    expect(h.flush().released).toHaveLength(7);
  });

  it('limits each instance by its own max_queue_size (differs: QEMU shares one process-global value)', () => {
    const small = new Harness({ maxQueueSize: 1 });
    const large = new Harness({ maxQueueSize: 10 });
    for (const h of [small, large]) for (let i = 0; i < 3; i++) h.primary(udp(`d${i}`));
    expect(small.divergences).toHaveLength(1);
    expect(large.divergences).toHaveLength(0);
  });
});

describe('stale scan (tick)', () => {
  it("asks once for a 'timeout' checkpoint for a packet held longer than compare_timeout, and releases nothing (matches QEMU)", () => {
    const h = new Harness({ compareTimeoutMs: 3000 });
    h.primary(udp('lonely'));
    expect(h.tick(3000).divergences).toEqual([]);
    const out = h.tick(3001);
    expect(out.divergences).toHaveLength(1);
    expect(out.divergences[0]).toMatchObject({ reason: 'timeout', offset: null, protocol: 'udp' });
    expect(out.released).toEqual([]);
    expect(h.tick(4001).divergences).toEqual([]); // once per connection until flush (differs: QEMU repeats every scan)
  });

  it('reports every stale connection in one scan, in first-seen order (differs: QEMU stops at the first)', () => {
    const h = new Harness({ compareTimeoutMs: 100 });
    h.primary(udp('a', { srcPort: 1 }));
    h.primary(udp('b', { srcPort: 2 }));
    h.now = 50;
    h.primary(udp('c', { srcPort: 3 }));
    const out = h.tick(120);
    expect(out.divergences.map((d) => d.connection.srcPort)).toEqual([1, 2]);
  });

  it('times out again after a flush if a packet is held too long again (matches QEMU)', () => {
    const h = new Harness({ compareTimeoutMs: 100 });
    h.primary(udp('a'));
    expect(h.tick(200).divergences).toHaveLength(1);
    h.flush();
    h.primary(udp('b'));
    expect(h.tick(400).divergences).toHaveLength(1);
  });
});

describe('flush', () => {
  it('releases every held primary in order, drops every held secondary and restarts comparison (matches QEMU, except non-TCP is oldest-first)', () => {
    const h = new Harness();
    const p = [udp('1'), udp('2'), udp('3')];
    for (const f of p) h.primary(f);
    h.secondary(tcp(1, 'secondary only'));
    const out = h.flush();
    expect(out.released.map((r) => r.frame)).toEqual(p);
    expect(out.dropped).toHaveLength(1);
    expect(h.engine.stats()).toMatchObject({
      heldPrimaryPackets: 0,
      heldSecondaryPackets: 0,
      heldPrimaryBytes: 0,
      heldSecondaryBytes: 0,
      flushes: 1,
    });
    h.primary(udp('4'));
    expect(h.secondary(udp('4')).released).toHaveLength(1);
  });

  it('accounts every pushed frame exactly once: released, dropped, malformed or still held (differs: QEMU can lose primary frames)', () => {
    const h = new Harness({ maxQueueSize: 3 });
    const frames = [tcp(1, 'abc'), tcp(4, 'def'), udp('x'), Buffer.alloc(5)];
    for (const f of frames) h.primary(f);
    h.secondary(tcp(1, 'abc'));
    h.secondary(udp('y'));
    h.secondary(tcp(4, 'dXf'));
    const s = h.engine.stats();
    expect(h.released.length + s.heldPrimaryPackets + h.malformed.filter((m) => m.side === 'primary').length).toBe(4);
    expect(h.dropped.length + s.heldSecondaryPackets).toBe(3);
    h.flush();
    expect(h.released).toHaveLength(3);
    expect(h.dropped).toHaveLength(3);
  });
});
