import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'colo-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; resolves with its exit status and output whatever the status. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return execFileAsync(process.execPath, [join(root, 'bin/colo-proxy.js'), ...args], {
    env: { ...process.env, ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: Outcome) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

/** Usage and configuration errors: status 2, and each line of stderr in the `colo-proxy: ...` form. */
function expectUsageError(outcome: Outcome, message: RegExp): void {
  expect(outcome.code, outcome.stderr).toBe(2);
  expect(outcome.stderr).toMatch(message);
  expect(outcome.stderr).not.toMatch(/^\s+at /m);
}

describe('colo-proxy CLI', () => {
  it('prints help naming its subcommands and the exit-status rule', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: colo-proxy');
    expect(stdout).toContain('demo');
    expect(stdout).toMatch(/Exit status \(every command\):\n\s+0\s+done\n\s+1\s+failed at run time/);
    const sub = await cli(['replay', '--help']);
    expect(sub.stdout).toMatch(/2\s+usage or configuration/);
    expect(sub.stdout).toContain('--log-level <level>');
  });

  it('prints the version from package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const { code, stdout } = await cli([flag]);
      expect(code).toBe(0);
      expect(stdout.trim()).toBe(version);
    }
  });

  it("gives commander's usage errors status 2 in the one-line form", async () => {
    const unknown = await cli(['no-such-command']);
    expectUsageError(unknown, /^colo-proxy: unknown command 'no-such-command'\n/);
    expectUsageError(await cli(['replay', '--no-such-flag']), /^colo-proxy: unknown option '--no-such-flag'/);
    expectUsageError(await cli(['run']), /^colo-proxy: required option '--config <file>' not specified/);
  });

  it('has no --checkpoint-timer on secondary and checkpoint, where it did nothing', async () => {
    for (const command of ['secondary', 'checkpoint']) {
      const outcome = await cli([command, '--checkpoint-timer', '500', '--listen', '127.0.0.1:0']);
      expectUsageError(outcome, /unknown option '--checkpoint-timer'/);
      expect((await cli([command, '--help'])).stdout).not.toContain('--checkpoint-timer');
    }
  });

  it('reports every config mistake at once, one line per field, status 2', async () => {
    const file = join(dir, 'two-mistakes.yaml');
    writeFileSync(file, 'endpoint: listen:127.0.0.1:9000\nplaintext: true\ntimeouts: { waitMs: soon }\nheartbeat: 5\n');
    const outcome = await cli(['secondary', '--config', file, '--driver-control', 'g.sock']);
    expectUsageError(outcome, /timeouts\.waitMs/);
    const lines = outcome.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^colo-proxy: config field "timeouts\.waitMs": expected .*, got "soon"$/),
      expect.stringMatching(/^colo-proxy: config field "heartbeat": expected no field of this name/),
    ]);
  });

  it('names a missing config file in one line, status 2', async () => {
    const outcome = await cli(['run', '--config', join(dir, 'absent.yaml')]);
    expectUsageError(outcome, /^colo-proxy: config file ".*absent\.yaml": cannot be read \(ENOENT/);
    expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
  });

  it("checks run's output paths before opening any interface", async () => {
    const file = join(dir, 'run.yaml');
    const checkpoint =
      '{ endpoint: connect:unix:/nonexistent.sock, plaintext: true, driver: { kind: lab, control: /x.sock } }';
    const config = `interfaces: { client: colonoif0, primary: colonoif1, secondary: colonoif2 }\ncheckpoint: ${checkpoint}\n`;
    writeFileSync(file, `${config}events: ${join(dir, 'no/such/dir/e.ndjson')}\n`);
    const outcome = await cli(['run', '--config', file]);
    // Without the check this config fails later, on the missing interfaces' offloads.
    expectUsageError(outcome, /^colo-proxy: config field "events": expected a writable file path \(directory /);
    expect(outcome.stderr).not.toContain('colonoif0');
  });

  it('takes --log-level beside COLO_LOG_LEVEL; an invalid level is a usage error naming the valid ones', async () => {
    const levels = /fatal, error, warn, info, debug, trace, silent/;
    const replay = ['replay', '--primary', 'examples/http/primary.pcap', '--secondary', 'examples/http/secondary.pcap'];
    const byFlag = await cli([...replay, '--log-level', 'loud']);
    expectUsageError(byFlag, levels);
    expect(byFlag.stdout).toBe('');
    const byEnv = await cli(replay, { COLO_LOG_LEVEL: 'loud' });
    expectUsageError(byEnv, /^colo-proxy: config field "COLO_LOG_LEVEL": expected one of fatal, error/);
    expect(byEnv.stdout).toBe('');
    // The flag wins over the environment.
    const ok = await cli(['--log-level', 'warn', ...replay, '--quiet'], { COLO_LOG_LEVEL: 'loud' });
    expect(ok).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});
