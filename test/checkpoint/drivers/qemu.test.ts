import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { QemuPrimaryDriver } from '../../../src/checkpoint/drivers/qemu-primary.js';
import { QemuSecondaryDriver } from '../../../src/checkpoint/drivers/qemu-secondary.js';
import { QmpClient } from '../../../src/checkpoint/qmp.js';
import { loadCheckpointConfig } from '../../../src/config/checkpoint.js';
import { describeWith, hasCommand, isRoot } from '../../support/prerequisites.js';
import { protectPair } from '../../support/checkpoint-pair.js';
import { driverError } from '../../support/driver-error.js';

/**
 * The qemu driver, both roles, against real QEMU processes without a guest (SeaBIOS idles: its RAM and
 * devices migrate like any VM's). Taps live in a namespace of the test's own; every QEMU runs in it.
 */

const run = promisify(execFile);
const ns = `cqd${process.pid % 100000}`;
const dir = mkdtempSync(join(tmpdir(), 'colo-qemu-driver-'));
const machine = ['-M', 'pc', '-accel', 'tcg', '-m', '64', '-nodefaults', '-display', 'none', '-serial', 'none'];
const nic = (tap: string) => [
  '-netdev',
  `tap,id=n0,ifname=${tap},script=no,downscript=no`,
  '-device',
  'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56',
];
const secondaryCommand = ['ip', 'netns', 'exec', ns, 'qemu-system-x86_64', ...machine, ...nic('{tap}')];
const timeouts = { suspendMs: 5000, saveMs: 10_000, loadMs: 10_000, resumeMs: 5000 };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let serial = 0;

/** The operator's primary VM: the driver gets one QMP socket, the test watches through a second one. */
async function startPrimary(): Promise<{ child: ChildProcess; driverQmp: string; watch: QmpClient }> {
  const n = serial++;
  const driverQmp = join(dir, `primary-${n}.qmp`);
  const watchQmp = join(dir, `primary-${n}-watch.qmp`);
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'qemu-system-x86_64', ...machine, ...nic('tp0')].concat(
      ['-qmp', `unix:${driverQmp},server=on,wait=off`],
      ['-qmp', `unix:${watchQmp},server=on,wait=off`],
    ),
    { stdio: 'ignore', detached: true },
  );
  const exited = once(child, 'exit');
  cleanups.push(async () => {
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
  });
  const watch = await QmpClient.connect(watchQmp, { timeoutMs: 5000 });
  cleanups.push(() => watch.close());
  return { child, driverQmp, watch };
}

function primaryDriver(qmp: string, precopy?: string): QemuPrimaryDriver {
  const driver = new QemuPrimaryDriver({
    qmp,
    workDir: join(dir, 'work'),
    timeouts,
    ...(precopy ? { precopy: { uri: precopy, maxMs: 3000, stopAtRemainingBytes: 4 << 20 } } : {}),
  });
  cleanups.push(() => driver.close());
  return driver;
}

function secondaryDriver(taps: string[], incoming?: string): QemuSecondaryDriver {
  const driver = new QemuSecondaryDriver({
    command: secondaryCommand,
    taps,
    workDir: join(dir, 'work'),
    timeouts,
    ...(incoming ? { incoming } : {}),
  });
  cleanups.push(() => driver.close());
  return driver;
}

/** One checkpoint in the order the coordinator and the agent make the calls. */
async function checkpoint(primary: QemuPrimaryDriver, secondary: QemuSecondaryDriver): Promise<Buffer> {
  await secondary.suspend();
  await primary.suspend();
  const state = await primary.save();
  await secondary.load(state);
  await primary.resume();
  await secondary.resume();
  return state;
}

async function status(qmp: QmpClient | null | undefined): Promise<string> {
  if (!qmp) throw new Error('no QMP connection');
  return (await qmp.execute<{ status: string }>('query-status')).status;
}

/**
 * A coordinator and an agent on a unix control socket, their qemu drivers built from YAML the way the
 * commands build them; resolves once the seeding checkpoint is done and the pair is protected.
 */
async function protect(primaryDriverYaml: string, secondaryDriverYaml: string) {
  const n = serial++;
  const control = join(dir, `control-${n}.sock`);
  const file = (name: string, endpoint: string, driver: string): string => {
    const path = join(dir, `${name}-${n}.yaml`);
    writeFileSync(path, `endpoint: ${endpoint}\nplaintext: true\ndriver:\n${driver}`);
    return path;
  };
  const primaryConfig = loadCheckpointConfig(
    file('primary', `listen:unix:${control}`, primaryDriverYaml),
    {},
    'primary',
  );
  const secondaryConfig = loadCheckpointConfig(
    file('secondary', `connect:unix:${control}`, secondaryDriverYaml),
    {},
    'secondary',
  );
  const pair = await protectPair(primaryConfig, () => secondaryConfig, cleanups, 60_000);
  return { ...pair, secondaryDriver: pair.secondaryDriver as QemuSecondaryDriver };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeWith(
  [isRoot(), hasCommand('qemu-system-x86_64', 'qemu-system-x86'), hasCommand('ip', 'iproute2')],
  'qemu driver with real QEMU processes',
  () => {
    beforeAll(async () => {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      for (const tap of ['tp0', 'ts0', 'ts1']) {
        await run('ip', ['netns', 'exec', ns, 'ip', 'tuntap', 'add', tap, 'mode', 'tap']);
        await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', tap, 'up']);
      }
    });
    afterAll(async () => {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });

    it('streams a stopped primary into a fresh secondary QEMU, and replaces it at the next checkpoint', async () => {
      const { driverQmp, watch } = await startPrimary();
      const primary = primaryDriver(driverQmp);
      const secondary = secondaryDriver(['ts0']);

      const state = await checkpoint(primary, secondary);
      expect(state.length).toBeGreaterThan(0);
      const first = secondary.currentVm;
      expect(first?.tap).toBe('ts0');
      expect(await status(watch)).toBe('running');
      expect(await status(first?.qmp)).toBe('running');
      expect(primary.stats.last?.mode).toBe('stream');

      await checkpoint(primary, secondary);
      const second = secondary.currentVm;
      expect(second?.pid).not.toBe(first?.pid);
      expect(first?.running).toBe(false);
      expect(alive(first?.pid as number)).toBe(false);
      expect(await status(second?.qmp)).toBe('running');
      expect(await status(watch)).toBe('running');
    });

    it('with two taps, loads into a standby on the other tap while the current VM keeps running', async () => {
      const { driverQmp } = await startPrimary();
      const primary = primaryDriver(driverQmp);
      const secondary = secondaryDriver(['ts0', 'ts1']);

      await checkpoint(primary, secondary);
      const first = secondary.currentVm;
      expect(first?.tap).toBe('ts0');

      await secondary.suspend();
      const standby = secondary.standbyVm;
      expect(standby?.tap).toBe('ts1');
      expect(await status(first?.qmp)).toBe('running'); // the failover target until the state is in
      await primary.suspend();
      await secondary.load(await primary.save());
      await primary.resume();
      await secondary.resume();
      expect(secondary.currentVm).toBe(standby);
      expect(first?.running).toBe(false);
      expect(await status(standby?.qmp)).toBe('running');
    });

    it.each([
      ['tcp', `tcp:127.0.0.1:${40000 + (process.pid % 20000)}`, `tcp:0.0.0.0:${40000 + (process.pid % 20000)}`],
      ['unix', `unix:${join(dir, 'standby.sock')}`, `unix:${join(dir, 'standby.sock')}`],
    ])('pre-copies QEMU to QEMU over %s and saves an empty state', async (_kind, target, incoming) => {
      const { driverQmp, watch } = await startPrimary();
      const primary = primaryDriver(driverQmp, target);
      const secondary = secondaryDriver(['ts0', 'ts1'], incoming);

      for (let i = 0; i < 2; i++) {
        const state = await checkpoint(primary, secondary);
        expect(state.length).toBe(0);
        expect(primary.stats.last?.mode).toBe('precopy');
        expect(primary.stats.last?.transferredBytes).toBeGreaterThan(0);
        expect(await status(watch)).toBe('running');
        expect(await status(secondary.currentVm?.qmp)).toBe('running');
      }
      expect(secondary.stats.started).toBe(2);
    });

    it('runs under the checkpoint protocol, stream and pre-copy, from YAML through createDriver', async () => {
      const yamlList = (items: string[]) => `[${items.map((item) => JSON.stringify(item)).join(', ')}]`;
      const work = join(dir, 'work');
      const port = 40000 + ((process.pid + 7) % 20000);
      for (const precopy of [false, true]) {
        const { driverQmp, watch } = await startPrimary();
        const primaryYaml =
          `  kind: qemu\n  qmp: ${driverQmp}\n  workDir: ${work}\n` +
          (precopy ? `  precopy: { uri: "tcp:127.0.0.1:${port}" }\n` : '');
        const secondaryYaml =
          `  kind: qemu\n  command: ${yamlList(secondaryCommand)}\n  workDir: ${work}\n` +
          (precopy ? `  taps: [ts0, ts1]\n  incoming: "tcp:0.0.0.0:${port}"\n` : '  taps: [ts0]\n');
        const { coordinator, agent, secondaryDriver } = await protect(primaryYaml, secondaryYaml);
        for (let i = 0; i < 2; i++) {
          const loaded = once(agent, 'checkpoint');
          // The coordinator reports a checkpoint after the primary resumed; checkpoint() itself resolves at LOADED.
          const reported = once(coordinator, 'checkpoint');
          const outcome = await coordinator.checkpoint('test');
          expect(outcome.ok, outcome.ok ? '' : outcome.error.message).toBe(true);
          if (outcome.ok) expect(outcome.stateBytes > 0, `state of ${outcome.stateBytes} bytes`).toBe(!precopy);
          await loaded; // the agent resumed its VM
          await reported;
          expect(await status(secondaryDriver.currentVm?.qmp)).toBe('running');
          expect(await status(watch)).toBe('running');
        }
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      }
    });

    it('rejects a state that is not a migration stream, naming the failure', async () => {
      const secondary = secondaryDriver(['ts0']);
      await secondary.suspend();
      const garbage = Buffer.alloc(1 << 20);
      for (let i = 0; i < garbage.length; i += 4) garbage.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
      const err = await driverError(secondary.load(garbage));
      expect(err.hook).toBe('load');
      expect(err.message).toMatch(/exited with status 1/);
      expect(err.message).toMatch(/migration/i);
      expect(err.message).toContain('the secondary has no VM now');
      expect(secondary.currentVm).toBeNull();
    });

    it('fails a save whose stream exceeds maxStateBytes, cancelling the migration; the primary resumes', async () => {
      const { driverQmp, watch } = await startPrimary();
      const primary = new QemuPrimaryDriver({
        qmp: driverQmp,
        workDir: join(dir, 'work'),
        timeouts,
        maxStateBytes: 4096,
      });
      cleanups.push(() => primary.close());
      await primary.suspend();
      const err = await driverError(primary.save());
      expect(err.hook).toBe('save');
      expect(err.message).toContain('larger than the maximum state size of 4096 bytes');
      const migration = await watch.execute<{ status: string }>('query-migrate');
      expect(['cancelled', 'failed', 'cancelling']).toContain(migration.status);
      await primary.resume();
      expect(await status(watch)).toBe('running');
    });

    it("names the migration's status and QEMU's error when a pre-copy cannot reach the secondary", async () => {
      const { driverQmp, watch } = await startPrimary();
      const primary = primaryDriver(driverQmp, 'unix:/nonexistent/colo-standby.sock');
      const err = await driverError(primary.suspend());
      expect(err.message).toMatch(/qemu driver \(primary\): suspend failed: migration failed: .*colo-standby\.sock/);
      expect(await status(watch)).toBe('running'); // nothing was stopped
    });

    it('reports a QEMU that will not start with its exit status and stderr', async () => {
      const secondary = new QemuSecondaryDriver({
        command: [...secondaryCommand, '-no-such-option'],
        taps: ['ts0'],
        workDir: join(dir, 'work'),
        timeouts,
      });
      cleanups.push(() => secondary.close());
      const err = await driverError(secondary.load(Buffer.from('state')));
      expect(err.message).toMatch(/exited with status 1; stderr: .*-no-such-option/);
      expect(err.message).toContain('the secondary has no VM now');
    });

    it('says the VM is gone after its QEMU is killed, then starts afresh', async () => {
      const { driverQmp } = await startPrimary();
      const primary = primaryDriver(driverQmp);
      const secondary = secondaryDriver(['ts0']);
      await checkpoint(primary, secondary);
      const vm = secondary.currentVm;
      process.kill(vm?.pid as number, 'SIGKILL');
      await vm?.exited;

      const err = await driverError(secondary.suspend());
      expect(err.message).toMatch(/the VM is gone: QEMU \(pid \d+, tap ts0\) was killed by signal SIGKILL/);
      await primary.resume(); // the aborted checkpoint's primary resumes; the next one re-seeds
      await checkpoint(primary, secondary);
      expect(await status(secondary.currentVm?.qmp)).toBe('running');
    });

    it('close() leaves no QEMU running', async () => {
      const { driverQmp } = await startPrimary();
      const primary = primaryDriver(driverQmp);
      const secondary = secondaryDriver(['ts0', 'ts1']);
      await checkpoint(primary, secondary);
      await secondary.suspend();
      const pids = [secondary.currentVm?.pid, secondary.standbyVm?.pid] as number[];
      expect(pids.every(alive)).toBe(true);
      await secondary.close();
      expect(pids.some(alive)).toBe(false);
    });
  },
);
