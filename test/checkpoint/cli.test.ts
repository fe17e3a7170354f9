import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { withTimeout } from './harness.js';

const run = promisify(execFile);
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGTERM');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Starts `colo-proxy secondary`; resolves with its JSON event lines as they come, once it listens. */
async function startSecondary(
  args: string[],
): Promise<{ child: ChildProcess; events: Record<string, unknown>[]; port: number }> {
  const child = spawn('node', ['bin/colo-proxy.js', 'secondary', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  const events: Record<string, unknown>[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`secondary exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      if (event.event === 'listening') resolve(Number(String(event.endpoint).split(':').at(-1)));
    });
  });
  return { child, events, port: await withTimeout(listening, 20_000, 'the secondary to listen') };
}

describe('colo-proxy secondary and colo-proxy checkpoint', () => {
  it('runs one checkpoint by hand between two processes and prints each phase duration', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'colo-cli-'));
    dirs.push(dir);
    const { events, port } = await startSecondary([
      '--listen',
      'listen:127.0.0.1:0',
      '--plaintext',
      '--exec-suspend',
      'true',
      '--exec-load',
      `cat > ${dir}/loaded`,
      '--exec-resume',
      'true',
    ]);
    const { stdout } = await run('node', [
      'bin/colo-proxy.js',
      'checkpoint',
      '--connect',
      `127.0.0.1:${port}`,
      '--plaintext',
      '--exec-suspend',
      'true',
      '--exec-save',
      'printf state-from-the-primary',
      '--exec-resume',
      'true',
      '--reason',
      'operator',
    ]);
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      ok: boolean;
      reason: string;
      stateBytes: number;
      durationsMs: Record<string, number>;
    };
    expect(result.ok).toBe(true);
    expect(result.reason).toBe('operator');
    expect(result.stateBytes).toBe('state-from-the-primary'.length);
    for (const phase of ['suspend', 'save', 'transfer', 'load', 'resume', 'total']) {
      expect(result.durationsMs[phase]).toBeGreaterThanOrEqual(0);
    }
    expect(readFileSync(join(dir, 'loaded'), 'utf8')).toBe('state-from-the-primary');
    expect(events.filter((e) => e.event === 'checkpoint').map((e) => e.seeding)).toEqual([true, false]);
  }, 60_000);

  it('refuses to start a secondary without a load hook, naming the field', async () => {
    await expect(
      run('node', [
        'bin/colo-proxy.js',
        'secondary',
        '--listen',
        '127.0.0.1:0',
        '--plaintext',
        '--exec-suspend',
        'true',
      ]),
    ).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('driver.load') });
  }, 30_000);
});
