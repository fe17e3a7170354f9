import { afterEach, describe, expect, it } from 'vitest';
import { CliProcess, freePort } from './cli-process.js';

/** --retry-ms and --max-retry-ms (timeouts.retryMs, timeouts.maxRetryMs) set a dialling side's back-off. */

const processes: CliProcess[] = [];
afterEach(async () => {
  for (const proc of processes.splice(0)) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
});

const hooks = ['--plaintext', '--driver-suspend', 'true', '--driver-resume', 'true', '--driver-load', 'cat'];

describe('the dialling back-off', () => {
  it('secondary --connect waits --retry-ms, doubling up to --max-retry-ms, between attempts', async () => {
    const port = await freePort();
    const args = ['secondary', '--connect', `127.0.0.1:${port}`, ...hooks, '--retry-ms', '30', '--max-retry-ms', '60'];
    const secondary = new CliProcess(args);
    processes.push(secondary);
    const waits = (): unknown[] => secondary.logs('waiting for the primary').map((l) => l.retryInMs);
    // One line per new wait: 30, then 60, where the defaults would have logged 100, 200, 400, ...
    await secondary.waitFor('stderr', () => waits().length >= 2, 20_000, 'two logged waits');
    expect(waits().slice(0, 2)).toEqual([30, 60]);
    expect(secondary.running).toBe(true);
  }, 30_000);
});
