import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LabDriver } from '../../src/checkpoint/drivers/lab.js';
import { hasCommand, isRoot, describeWith } from '../support/prerequisites.js';
import { LineClient } from './line-client.js';

/**
 * The lab guest as the inline proxy's end-to-end tests will run it: inside a network namespace of its own,
 * bound to the namespace's address, reached over a veth pair. Names and the /30 are derived from the pid so
 * parallel suites do not collide; everything is deleted afterwards.
 */

const tag = process.pid % 10_000;
const ns = `colo-lg-${process.pid}`;
const hostIf = `clg${tag}h`;
const guestIf = `clg${tag}g`;
const subnet = `10.251.${process.pid % 250}`;
const hostIp = `${subnet}.1`;
const guestIp = `${subnet}.2`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

describeWith([isRoot(), hasCommand('ip', 'iproute2')], 'lab guest inside a network namespace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'colo-lab-netns-'));
  let child: ChildProcess | null = null;

  beforeAll(() => {
    ip('netns', 'add', ns);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', guestIf);
    ip('link', 'set', guestIf, 'netns', ns);
    ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', ns, 'addr', 'add', `${guestIp}/30`, 'dev', guestIf);
    ip('-n', ns, 'link', 'set', guestIf, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    try {
      ip('netns', 'del', ns); // takes the veth pair with it
    } catch {
      // setup failed before the namespace existed
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves on the namespace address and is driven through its control socket', async () => {
    const control = join(dir, 'guest.sock');
    child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'node',
        'bin/colo-proxy.js',
        'lab-guest',
        '--listen',
        `${guestIp}:7000`,
        '--control',
        control,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines = createInterface({ input: child.stdout! });
    let timer: NodeJS.Timeout | undefined;
    const [line] = (await Promise.race([
      once(lines, 'line'),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('lab guest did not start within 15 s')), 15_000);
      }),
    ]).finally(() => clearTimeout(timer))) as [string];
    expect(JSON.parse(line).listen).toBe(`${guestIp}:7000`);

    const client = await LineClient.open(7000, guestIp);
    const driver = new LabDriver(control, { suspendMs: 3000, resumeMs: 3000, saveMs: 3000 });
    try {
      client.send('SET where namespace\nGET where\n');
      expect(await client.lines(2)).toEqual(['OK', 'namespace']);
      await driver.suspend();
      client.send('INCR n\n');
      await driver.save(); // a control round trip while the request is held
      expect(client.text().split('\n').length - 1).toBe(2);
      await driver.resume();
      expect((await client.lines(3))[2]).toBe('1');
    } finally {
      client.close();
      await driver.close();
    }
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
