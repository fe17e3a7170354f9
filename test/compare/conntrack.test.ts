/**
 * Connection tracking: reference section 1.3. Each test says whether we match QEMU or deliberately differ.
 */
import { describe, expect, it } from 'vitest';
import { ConnectionTable, ConnKind } from '../../compare/conntrack.js';
import { dissect } from '../../compare/wire/dissect.js';
import { FrameInfo } from '../../compare/wire/frame-info.js';
import { Harness, tcp, udp } from './support.js';

function infoOf(frame: Buffer): FrameInfo {
  const info = new FrameInfo();
  expect(dissect(frame, 0, frame.length, info)).toBeNull();
  return info;
}

describe('ConnectionTable', () => {
  it('finds the same connection for the same 5-tuple and a new one for any other (matches QEMU’s key)', () => {
    const table = new ConnectionTable(100);
    const a = table.lookup(infoOf(tcp(1, 'x')), ConnKind.TCP, 'tcp', 0)!;
    expect(table.lookup(infoOf(tcp(99, 'other bytes')), ConnKind.TCP, 'tcp', 0)!).toBe(a);
    const others = [
      tcp(1, 'x', { srcPort: 81 }),
      tcp(1, 'x', { dstPort: 40001 }),
      tcp(1, 'x', { src: '10.0.0.3' }),
      tcp(1, 'x', { dst: '10.0.0.9' }),
      tcp(1, 'x', { src: 'fd00::2', dst: 'fd00::1' }),
      // No direction normalisation (matches QEMU): both inputs are guest egress.
      tcp(1, 'x', { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80 }),
    ].map((f) => table.lookup(infoOf(f), ConnKind.TCP, 'tcp', 0)!);
    expect(new Set([a, ...others]).size).toBe(7);
    expect(table.lookup(infoOf(udp('x', { srcPort: 80, dstPort: 40000 })), ConnKind.DATAGRAM, 'udp', 0)!).not.toBe(a);
  });

  it('finds each of many connections again, also after one is removed', () => {
    const table = new ConnectionTable(1000);
    const conns = [];
    for (let port = 1; port <= 300; port++)
      conns.push(table.lookup(infoOf(tcp(1, '', { srcPort: port })), ConnKind.TCP, 'tcp', 0)!);
    for (let port = 1; port <= 300; port++) {
      expect(table.lookup(infoOf(tcp(1, '', { srcPort: port })), ConnKind.TCP, 'tcp', 0)!).toBe(conns[port - 1]);
    }
    table.remove(conns[150]);
    expect(table.lookup(infoOf(tcp(1, '', { srcPort: 152 })), ConnKind.TCP, 'tcp', 0)!).toBe(conns[151]);
    expect(table.size).toBe(299);
  });

  it('evicts the least recently used idle connection when full (differs: QEMU discards the whole table at 16384)', () => {
    const table = new ConnectionTable(2);
    const a = table.lookup(infoOf(tcp(1, '', { srcPort: 1 })), ConnKind.TCP, 'tcp', 0)!;
    const b = table.lookup(infoOf(tcp(1, '', { srcPort: 2 })), ConnKind.TCP, 'tcp', 0)!;
    table.lookup(infoOf(tcp(1, '', { srcPort: 1 })), ConnKind.TCP, 'tcp', 0)!; // a is now the most recent
    const c = table.lookup(infoOf(tcp(1, '', { srcPort: 3 })), ConnKind.TCP, 'tcp', 0)!;
    expect(table.size).toBe(2);
    expect(table.evictions).toBe(1);
    const order = [];
    for (let conn = table.first(); conn !== null; conn = conn.nextSeen) order.push(conn);
    expect(order).toEqual([a, c]);
    expect(order).not.toContain(b);
  });
});

describe('connection bound in the engine', () => {
  it('never discards a connection with held packets: a new one is refused and passed uncompared, counted (differs: QEMU frees them unsent)', () => {
    const h = new Harness({ maxConnections: 2 });
    const held = [1, 2].map((port) => tcp(1, 'held', { srcPort: port }));
    for (const frame of held) h.primary(frame);
    const refused = tcp(1, 'refused', { srcPort: 3 });
    expect(h.primary(refused).released.map((p) => p.frame)).toEqual([refused]);
    expect(h.secondary(tcp(5, 'refused', { srcPort: 3 })).dropped).toHaveLength(1);
    expect(h.engine.stats()).toMatchObject({ connections: 2, connectionsRefused: 2, evictions: 0 });
    expect(h.flush().released.map((p) => p.frame)).toEqual(held);
  });

  it('flushes connections in first-seen order (matches QEMU)', () => {
    const h = new Harness();
    const first = udp('1', { srcPort: 7 });
    const second = tcp(1, '2');
    const third = udp('3', { srcPort: 9 });
    h.primary(first);
    h.primary(second);
    h.primary(third);
    h.primary(udp('4', { srcPort: 7 }));
    expect(h.flush().released.map((p) => p.frame)).toEqual([first, udp('4', { srcPort: 7 }), second, third]);
  });
});
