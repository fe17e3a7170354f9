import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { CliProcess, freePort } from './cli-process.js';

/**
 * Two hosts start in whatever order they start: whichever command dials waits for its peer (redialling with
 * backoff, logging it) instead of exiting, and `checkpoint` always ends with its JSON result.
 */

const processes: CliProcess[] = [];
afterEach(async () => {
  for (const proc of processes.splice(0)) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
});

function start(args: string[]): CliProcess {
  const proc = new CliProcess(args);
  processes.push(proc);
  return proc;
}

const secondaryHooks = ['--plaintext', '--driver-suspend', 'true', '--driver-resume', 'true'];
const primaryHooks = [...secondaryHooks, '--driver-save', 'printf state-from-the-primary'];

describe('start order', () => {
  it('a secondary started before its primary waits for it, then is seeded and checkpointed', async () => {
    const port = await freePort();
    const secondary = start(['secondary', '--connect', `127.0.0.1:${port}`, ...secondaryHooks, '--driver-load', 'cat']);
    // Two failed attempts logged: it retried rather than exiting (it used to exit 13 after the first).
    await secondary.waitFor('stderr', () => secondary.logs('waiting for the primary').length >= 2, 20_000, 'a retry');
    expect(secondary.running).toBe(true);
    expect(secondary.logs('waiting for the primary')[0]).toMatchObject({
      peer: `connect:127.0.0.1:${port}`,
      attempt: 1,
    });

    const primary = start(['checkpoint', '--listen', `127.0.0.1:${port}`, ...primaryHooks, '--reason', 'late']);
    await secondary.waitFor('stdout', (e) => e.event === 'ready', 20_000, 'the secondary to be ready');
    const { code } = await primary.exited;
    const result = primary.stdout.at(-1)!;
    expect(result).toMatchObject({ ok: true, reason: 'late', stateBytes: 'state-from-the-primary'.length });
    expect(code).toBe(0);
    expect(secondary.stdout.filter((e) => e.event === 'checkpoint').map((e) => e.seeding)).toEqual([true, false]);
    expect(secondary.logs('connected to the primary')).toHaveLength(1);

    // The primary went away deliberately: the secondary waits to be re-seeded; a signal ends it with 0.
    expect(secondary.running).toBe(true);
    secondary.kill('SIGTERM');
    expect((await secondary.exited).code).toBe(0);
  }, 60_000);

  it('checkpoint started before its secondary waits for it within --ready-ms', async () => {
    const port = await freePort();
    const primary = start(['checkpoint', '--connect', `127.0.0.1:${port}`, ...primaryHooks]);
    await primary.waitFor('stderr', (l) => String(l.msg).includes('waiting for the secondary'), 20_000, 'a retry');
    expect(primary.running).toBe(true);

    const secondary = start(['secondary', '--listen', `127.0.0.1:${port}`, ...secondaryHooks, '--driver-load', 'cat']);
    const { code } = await primary.exited;
    expect(primary.stdout.at(-1)).toMatchObject({ ok: true, reason: 'manual' });
    expect(code).toBe(0);
    expect(secondary.stdout.filter((e) => e.event === 'checkpoint')).toHaveLength(2);
  }, 60_000);

  it('checkpoint gives up with its JSON result and status 1 when no secondary comes within --ready-ms', async () => {
    const port = await freePort();
    const primary = start(['checkpoint', '--connect', `127.0.0.1:${port}`, '--ready-ms', '1500', ...primaryHooks]);
    const { code } = await primary.exited;
    expect(primary.stdout.at(-1)).toMatchObject({ ok: false, error: 'COLO_CKPT_NOT_PROTECTED' });
    expect(String(primary.stdout.at(-1)!.message)).toContain('1500 ms');
    expect(primary.logs('waiting for the secondary').length).toBeGreaterThanOrEqual(2);
    expect(code).toBe(1);
  }, 30_000);

  it('checkpoint prints its JSON result and exits 1 when its secondary is killed during the seeding', async () => {
    // The load hook kills the secondary process itself ($PPID of the hook's shell): mid-seed, deterministically.
    const secondary = start([
      'secondary',
      '--listen',
      '127.0.0.1:0',
      ...secondaryHooks,
      '--driver-load',
      'kill -9 $PPID',
    ]);
    const listening = await secondary.waitFor(
      'stdout',
      (e) => e.event === 'listening',
      20_000,
      'the secondary to listen',
    );
    const port = String(listening.endpoint).split(':').at(-1)!;
    const primary = start(['checkpoint', '--connect', `127.0.0.1:${port}`, ...primaryHooks]);
    const { code } = await primary.exited;
    expect((await secondary.exited).signal).toBe('SIGKILL');
    expect(primary.stdout).toHaveLength(1);
    expect(primary.stdout[0]).toMatchObject({ ok: false, error: 'COLO_CKPT_CLOSED' });
    expect(String(primary.stdout[0].message)).toContain('before it was ready');
    expect(code).toBe(1);
  }, 60_000);

  it('a secondary whose listening address is taken says so in one line and exits 1', async () => {
    const taken = net.createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    try {
      const { port } = taken.address() as net.AddressInfo;
      const secondary = start([
        'secondary',
        '--listen',
        `127.0.0.1:${port}`,
        ...secondaryHooks,
        '--driver-load',
        'cat',
      ]);
      const { code } = await secondary.exited;
      expect(code).toBe(1);
      expect(secondary.stdout).toEqual([]);
      const text = secondary.stderr.filter((line) => line.text !== undefined).map((line) => line.text);
      expect(text).toEqual([
        `colo-proxy secondary: cannot listen on listen:127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
      ]);
    } finally {
      taken.close();
    }
  }, 30_000);
});
