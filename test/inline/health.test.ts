import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { execProbe, labProbe, watchPrimary } from '../../src/inline/health.js';
import { GuestControlServer } from '../../src/lab/guest-control.js';
import { LabGuest } from '../../src/lab/guest.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-health-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('primary health check', () => {
  it('a lab probe is healthy while the guest answers and names the failure once it is gone', async () => {
    const path = join(dir, 'guest.sock');
    const server = new GuestControlServer(new LabGuest());
    await server.listen({ kind: 'unix', path });
    const probe = labProbe(`unix:${path}`);
    expect(await probe(1000)).toBeNull();
    await server.close();
    expect(await probe(1000)).toMatch(/control socket/);
  });

  it('an exec probe follows the exit status, and a hung command counts as failed', async () => {
    expect(await execProbe('true')(1000)).toBeNull();
    expect(await execProbe('exit 3')(1000)).toContain('exit 3');
    expect(await execProbe('sleep 5')(100)).toContain('timed out');
  });

  it('declares the primary lost only after N failures in a row, once', async () => {
    // The watch's interval runs on fake time: the test moves it, one interval at a time.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const results = [null, 'x', null, 'a', 'b', 'c', 'd'];
      let calls = 0;
      const failures: number[] = [];
      const lost: string[] = [];
      watchPrimary({
        probe: () => Promise.resolve(calls < results.length ? results[calls++] : 'e'),
        intervalMs: 5,
        failures: 3,
        timeoutMs: 100,
        onFailure: (_reason, inARow) => failures.push(inARow),
        onLost: (reason) => lost.push(reason),
      });
      for (let step = 0; lost.length === 0 && step < 100; step++) await vi.advanceTimersByTimeAsync(5);
      expect(lost).toHaveLength(1);
      // Long after the loss (two hundred intervals): no further probe, failure or loss.
      await vi.advanceTimersByTimeAsync(1000);
      expect(failures).toEqual([1, 1, 2, 3]);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toContain('3 times in a row: c');
      expect(calls).toBe(6);
    } finally {
      vi.useRealTimers();
    }
  });
});
