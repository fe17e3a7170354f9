/**
 * The connection table's hard bound (issue 17, finding 4): a flood of new connections on both sides (SYNs
 * whose ports never pair up) keeps the table at maxConnections, refuses what does not fit (counted, passed
 * uncompared), and idle connections really go: after the flush, and after connectionIdleMs.
 */
import { describe, expect, it } from 'vitest';
import { Harness, SYN, tcp } from './support.js';

function synFlood(h: Harness, count: number, sizes: number[]): void {
  for (let i = 0; i < count; i++) {
    h.primary(tcp(1000, '', { srcPort: 1024 + i, flags: SYN }));
    h.secondary(tcp(9000, '', { srcPort: 30000 + i, flags: SYN }));
    sizes.push(h.engine.stats().connections);
  }
}

describe('connection table bound', () => {
  it('stays within maxConnections under 2,000 unpaired SYNs, and every frame is accounted for', () => {
    const h = new Harness({ maxConnections: 64 });
    const sizes: number[] = [];
    synFlood(h, 1000, sizes);
    expect(Math.max(...sizes)).toBe(64);
    const stats = h.engine.stats();
    expect(stats.connectionsRefused).toBe(2000 - 64);
    const held = stats.heldPrimaryPackets + stats.heldSecondaryPackets;
    expect(h.released.length + h.dropped.length + held).toBe(2000);
  });

  it('shrinks: a flush trims to the bound, and idle connections go after connectionIdleMs', () => {
    const h = new Harness({ maxConnections: 64, connectionIdleMs: 5000, compareTimeoutMs: 1_000_000 });
    synFlood(h, 1000, []);
    h.flush();
    expect(h.engine.stats()).toMatchObject({ connections: 64, heldPrimaryPackets: 0, heldSecondaryPackets: 0 });
    h.tick(4999);
    expect(h.engine.stats().connections).toBe(64);
    h.tick(5001);
    expect(h.engine.stats().connections).toBe(0);
    expect(h.engine.stats().evictions).toBe(64);
  });

  it('idle eviction leaves connections that hold packets, and a refused connection is tracked once there is room', () => {
    const h = new Harness({ maxConnections: 2, connectionIdleMs: 100, compareTimeoutMs: 1_000_000 });
    const busy = tcp(1, 'busy', { srcPort: 1 });
    h.primary(busy);
    h.primary(tcp(1, 'idle', { srcPort: 2 }));
    h.secondary(tcp(1, 'idle', { srcPort: 2 }));
    h.tick(1000);
    expect(h.engine.stats().connections).toBe(1);
    h.primary(tcp(1, 'new', { srcPort: 3 }));
    expect(h.engine.stats()).toMatchObject({ connections: 2, connectionsRefused: 0, heldPrimaryPackets: 2 });
    expect(h.flush().released.map((p) => p.frame)[0]).toEqual(busy);
  });
});
