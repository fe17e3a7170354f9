/**
 * src/rate-limited-log.ts: a flood of one kind costs `burst` lines and one summary per window with the exact
 * count held back; kinds do not share a budget; a new window writes again; close() reports the last window.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from '../src/log.js';
import { RateLimitedLog, type LimitedLevel } from '../src/rate-limited-log.js';

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function recorder(): { lines: Line[]; logger: Pick<Logger, LimitedLevel> } {
  const lines: Line[] = [];
  // RateLimitedLog calls each level as (fields, msg), pino's object-first form.
  const at = (level: string) =>
    ((fields: object, msg: string) =>
      void lines.push({ level, fields: fields as Record<string, unknown>, msg })) as Logger[LimitedLevel];
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('RateLimitedLog', () => {
  it('10,000 lines of one kind in a window: burst lines, then one summary with the exact count', () => {
    const { lines, logger } = recorder();
    let now = 0;
    const log = new RateLimitedLog(logger, { burst: 5, windowMs: 1000, clock: () => now });
    for (let i = 0; i < 10_000; i++) log.line('info', 'divergence', { i }, 'divergence');
    expect(lines).toHaveLength(5);
    expect(lines.map((l) => l.fields.i)).toEqual([0, 1, 2, 3, 4]);
    now = 1000;
    log.line('info', 'divergence', { i: 10_000 }, 'divergence');
    expect(lines).toHaveLength(7);
    expect(lines[5]).toMatchObject({ level: 'warn', fields: { kind: 'divergence', written: 5, suppressed: 9995 } });
    expect(lines[5].msg).toMatch(/^9995 more "divergence" lines not written in the last 1 s/);
    expect(lines[6].fields).toMatchObject({ i: 10_000, kind: 'divergence' });
    expect(log.suppressedTotal).toBe(9995);
  });

  it('gives each kind its own budget, and close() summarises the window in progress', () => {
    const { lines, logger } = recorder();
    const log = new RateLimitedLog(logger, { burst: 1, windowMs: 60_000, clock: () => 0 });
    for (let i = 0; i < 3; i++) {
      log.line('warn', 'malformed', {}, 'malformed frame rejected');
      log.line('info', 'divergence', {}, 'divergence');
    }
    expect(lines.map((l) => l.fields.kind)).toEqual(['malformed', 'divergence']);
    log.close();
    expect(lines.slice(2).map((l) => [l.fields.kind, l.fields.suppressed])).toEqual([
      ['malformed', 2],
      ['divergence', 2],
    ]);
    log.close();
    expect(lines).toHaveLength(4);
  });

  it('refuses a window that is not a positive integer', () => {
    expect(() => new RateLimitedLog(recorder().logger, { windowMs: 0 })).toThrow(
      /windowMs must be a positive integer, got 0/,
    );
  });
});
