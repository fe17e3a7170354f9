import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecDriver } from '../../../src/checkpoint/drivers/exec.js';
import { driverError } from '../../support/driver-error.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-exec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Running or sleeping; a zombie (killed, waiting for its new parent to reap it) counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls with a bound: the kernel reaps a SIGKILLed process asynchronously. */
async function waitGone(pid: number, boundMs = 2000): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return !alive(pid);
}

describe('exec driver', () => {
  it('runs each hook through sh -c, in order, with the hook name in COLO_HOOK', async () => {
    const log = join(dir, 'order.log');
    const append = `echo "$COLO_HOOK" >> ${log}`;
    const driver = new ExecDriver({ suspend: append, save: `${append}; printf state-bytes`, resume: append });
    await driver.suspend();
    const state = await driver.save();
    await driver.resume();
    expect(state.toString()).toBe('state-bytes');
    expect(readFileSync(log, 'utf8')).toBe('suspend\nsave\nresume\n');
    expect(driver.stats).toEqual({ calls: 3, failures: 0, timeouts: 0 });
  });

  it('passes the state to load on stdin, byte for byte', async () => {
    const out = join(dir, 'loaded.bin');
    const driver = new ExecDriver({ load: `cat > ${out}; echo "$COLO_STATE_BYTES" > ${out}.len` });
    const state = Buffer.from([0, 1, 2, 255, 10, 13, 0]);
    await driver.load(state);
    expect(readFileSync(out)).toEqual(state);
    expect(readFileSync(`${out}.len`, 'utf8').trim()).toBe('7');
  });

  it('a failing hook rejects naming the hook, its exit status and the end of its stderr', async () => {
    const driver = new ExecDriver({ suspend: 'echo "disk on fire" >&2; exit 3' });
    const err = await driverError(driver.suspend());
    expect(err.hook).toBe('suspend');
    expect(err.exitStatus).toBe(3);
    expect(err.stderr).toBe('disk on fire');
    expect(err.timedOut).toBe(false);
    expect(err.message).toContain('"suspend"');
    expect(err.message).toContain('exit status 3');
    expect(err.message).toContain('disk on fire');
    expect(driver.stats).toEqual({ calls: 1, failures: 1, timeouts: 0 });
  });

  it('reports only the last few KiB of a long stderr', async () => {
    const driver = new ExecDriver(
      { resume: 'head -c 100000 /dev/zero | tr "\\0" x >&2; echo THE-END >&2; exit 1' },
      {},
      { stderrTailBytes: 1024 },
    );
    const err = await driverError(driver.resume());
    expect(err.stderr.length).toBeLessThanOrEqual(1024);
    expect(err.stderr.endsWith('THE-END')).toBe(true);
  });

  it('a hook that overruns its timeout is killed with its whole process group', async () => {
    const pids = join(dir, 'pids');
    // The background sleep is a grandchild: only a process-group kill reaches it.
    const driver = new ExecDriver({ save: `sleep 30 & echo $! > ${pids}; echo $$ >> ${pids}; wait` }, { saveMs: 300 });
    const started = Date.now();
    const err = await driverError(driver.save());
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err.hook).toBe('save');
    expect(err.timedOut).toBe(true);
    expect(err.message).toContain('timed out after 300 ms');
    expect(driver.stats).toEqual({ calls: 1, failures: 1, timeouts: 1 });
    const [grandchild, shell] = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    expect(await waitGone(shell)).toBe(true);
    expect(await waitGone(grandchild)).toBe(true);
  });

  it('a hook may leave a background process running if it redirects its output', async () => {
    const pidFile = join(dir, 'daemon.pid');
    const driver = new ExecDriver({ resume: `sleep 30 >/dev/null 2>&1 & echo $! > ${pidFile}` }, { resumeMs: 5000 });
    await driver.resume();
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
  });

  it('a hook killed by a signal reports the signal and a null exit status', async () => {
    const driver = new ExecDriver({ suspend: 'kill -TERM $$' });
    const err = await driverError(driver.suspend());
    expect(err.exitStatus).toBeNull();
    expect(err.message).toContain('SIGTERM');
  });

  it('a hook the config does not have rejects naming it (the secondary has no save)', async () => {
    const driver = new ExecDriver({ suspend: 'true', load: 'cat >/dev/null', resume: 'true' });
    const err = await driverError(driver.save());
    expect(err.hook).toBe('save');
    expect(err.message).toContain('no save hook is configured');
  });

  it('refuses save output beyond the maximum state size and kills the hook', async () => {
    const driver = new ExecDriver({ save: 'head -c 3000000 /dev/zero' }, {}, { maxStateBytes: 1_000_000 });
    const err = await driverError(driver.save());
    expect(err.hook).toBe('save');
    expect(err.message).toContain('more than the maximum state size of 1000000 bytes');
  });

  it('a load hook that does not read its stdin succeeds or fails on its exit status alone', async () => {
    const big = Buffer.alloc(4 << 20, 7);
    await new ExecDriver({ load: 'exit 0' }).load(big);
    const err = await driverError(new ExecDriver({ load: 'exit 5' }).load(big));
    expect(err.exitStatus).toBe(5);
  });

  it('carries a 64 MiB state through save and load intact', async () => {
    const file = join(dir, 'big.bin');
    const size = 64 << 20;
    const driver = new ExecDriver(
      {
        save: `head -c ${size} /dev/urandom | tee ${file}.src`,
        load: `cat > ${file}`,
      },
      { saveMs: 30_000, loadMs: 30_000 },
    );
    const state = await driver.save();
    expect(state.length).toBe(size);
    const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
    expect(digest(state)).toBe(digest(readFileSync(`${file}.src`)));
    await driver.load(state);
    expect(digest(readFileSync(file))).toBe(digest(state));
  });

  it('close() kills a hook still running', async () => {
    const pidFile = join(dir, 'close.pid');
    const driver = new ExecDriver({ resume: `echo $$ > ${pidFile}; exec sleep 30` }, { resumeMs: 60_000 });
    const pending = driver.resume();
    const pid = await (async () => {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        try {
          const text = readFileSync(pidFile, 'utf8').trim();
          if (text !== '') return Number(text);
        } catch {
          // not written yet
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      throw new Error('hook never started');
    })();
    await driver.close();
    const err = await driverError(pending);
    expect(err.hook).toBe('resume');
    expect(await waitGone(pid)).toBe(true);
  });
});
