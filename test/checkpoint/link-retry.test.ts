import { once } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/checkpoint/agent.js';
import { Coordinator } from '../../src/checkpoint/coordinator.js';
import { linkAgent, linkCoordinator } from '../../src/checkpoint/link.js';
import { parseEndpoint } from '../../src/checkpoint/transport.js';
import { freePort } from './cli-process.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, withTimeout } from './harness.js';

/** A logger whose lines land in `lines`, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[]; next(): Promise<void> } {
  const lines: Record<string, unknown>[] = [];
  let wake: (() => void) | null = null;
  const logger = pino(
    { level: 'info' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
        wake?.();
      },
    },
  );
  return { logger, lines, next: () => new Promise<void>((resolve) => (wake = resolve)) };
}

const retries = (lines: Record<string, unknown>[]): Record<string, unknown>[] =>
  lines.filter((line) => String(line.msg).startsWith('waiting for the primary'));

describe('a dialling link waiting for its peer', () => {
  it('logs each attempt while the backoff grows, then goes quiet, and is ready once the peer comes up', async () => {
    const port = await freePort();
    const { logger, lines, next } = capturingLogger();
    const agent = new Agent({ driver: new FakeDriver(), timeouts: fastTimeouts });
    const link = await linkAgent(agent, parseEndpoint(`connect:127.0.0.1:${port}`), {
      material: null,
      logger,
      retryMs: 2,
      maxRetryMs: 8,
    });
    try {
      while (retries(lines).length < 3) await withTimeout(next(), 2000, 'a retry line');
      // Backoff 2, 4, then 8 (the longest): attempts 1 to 3 are logged, then one line per 30 s at most.
      expect(retries(lines).map((line) => [line.attempt, line.retryInMs])).toEqual([
        [1, 2],
        [2, 4],
        [3, 8],
      ]);
      await new Promise((resolve) => setTimeout(resolve, 200)); // some 25 more attempts at 8 ms
      expect(retries(lines)).toHaveLength(3);

      // The primary comes up: the agent is seeded and ready, and says how many attempts it took.
      const primary = new Coordinator({ driver: new FakeDriver(Buffer.from('p')), timeouts: fastTimeouts });
      const ready = once(primary, 'ready');
      const listening = await linkCoordinator(primary, parseEndpoint(`listen:127.0.0.1:${port}`), { material: null });
      await withTimeout(ready, 3000, 'ready');
      const connected = lines.find((line) => line.msg === 'connected to the primary');
      // Attempts went on unlogged meanwhile (three lines for all of them).
      expect(Number(connected?.attempts)).toBeGreaterThan(5);
      await primary.close();
      await listening.close();
    } finally {
      await agent.close();
      await link.close();
    }
  });
});
