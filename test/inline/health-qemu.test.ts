import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/checkpoint/qmp.js';
import { loadInlineConfig } from '../../src/config/inline.js';
import { probeFor, qemuProbe } from '../../src/inline/health.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';
import { configError, configFiles } from '../support/config-files.js';

/** The configs and the tests' QMP sockets. */
const files = configFiles('colo-health-qemu-');
const dir = files.dir;
const load = (yaml: string) => loadInlineConfig(files.write(yaml));

const config = (healthQmp: string) => `
interfaces: { client: xcli, primary: xpri, secondary: xsec }
checkpoint:
  endpoint: connect:unix:/run/colo/agent.sock
  plaintext: true
  driver: { kind: qemu, qmp: /run/colo-vm/primary.qmp }
primaryHealth: { kind: qemu, qmp: ${healthQmp} }
`;

describe('qemu primary health check: config and failures without QEMU', () => {
  it('reads a qemu health check with the defaults', () => {
    const loaded = load(config('/run/colo-vm/health.qmp'));
    expect(loaded.primaryHealth).toEqual({
      kind: 'qemu',
      qmp: '/run/colo-vm/health.qmp',
      intervalMs: 500,
      failures: 3,
      timeoutMs: 1000,
    });
    expect(typeof probeFor(loaded.primaryHealth as Exclude<typeof loaded.primaryHealth, { kind: 'none' }>)).toBe(
      'function',
    );
  });

  it("refuses the driver's own QMP socket, naming the field", () => {
    const err = configError(() => load(config('/run/colo-vm/primary.qmp')));
    expect(err.field).toBe('primaryHealth.qmp');
    expect(err.message).toContain('a QMP socket other than checkpoint.driver.qmp');
  });

  it('fails at once on a socket nobody listens on', async () => {
    const reason = await qemuProbe(join(dir, 'nobody.qmp'))(5000);
    expect(reason).toMatch(/cannot connect to QMP socket .*nobody\.qmp/);
  });

  it('fails a socket that accepts but never answers, within the timeout', async () => {
    const path = join(dir, 'mute.qmp');
    const accepted: Socket[] = [];
    const server = createServer((socket) => accepted.push(socket));
    server.listen(path);
    await once(server, 'listening');
    try {
      const started = performance.now();
      const reason = await qemuProbe(path)(100);
      expect(reason).toMatch(/no QMP greeting .* within/);
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      for (const socket of accepted) socket.destroy();
      server.close();
    }
  });
});

describeWith([hasCommand('qemu-system-x86_64', 'qemu-system-x86')], 'qemu primary health check against QEMU', () => {
  it('is healthy while QEMU answers, stopped or running, and fails once it is killed', async () => {
    const path = join(dir, 'vm.qmp');
    const child = spawn(
      'qemu-system-x86_64',
      ['-M', 'pc', '-accel', 'tcg', '-m', '32', '-nodefaults', '-display', 'none', '-serial', 'none', '-S'].concat([
        '-qmp',
        `unix:${path},server=on,wait=off`,
      ]),
      { stdio: 'ignore' },
    );
    const exited = once(child, 'exit');
    try {
      const probe = qemuProbe(path);
      // QEMU creates its socket a moment after it starts: wait for it with the client's bounded retry.
      (await QmpClient.connect(path, { timeoutMs: 5000 })).close();
      expect(await probe(1000)).toBeNull();
      expect(await probe(1000)).toBeNull(); // the socket serves the next check after the last one closed
      child.kill('SIGKILL');
      await exited;
      expect(await probe(1000)).toMatch(/QMP socket/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
