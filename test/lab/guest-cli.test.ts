import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LabDriver } from '../../src/checkpoint/drivers/lab.js';
import { LineClient } from './line-client.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-lab-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function withBound<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** Starts `colo-proxy lab-guest` and reads the one JSON line it prints once both sockets are bound. */
async function startProcess(
  args: string[],
): Promise<{ child: ChildProcess; ready: { listen: string; control: string } }> {
  const child = spawn('node', ['bin/colo-proxy.js', 'lab-guest', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await withBound(once(lines, 'line'), 15_000, 'lab-guest start')) as [string];
  return { child, ready: JSON.parse(line) };
}

describe('colo-proxy lab-guest (standalone process)', () => {
  it('serves on the given address, obeys its control socket, and stops cleanly on SIGTERM', async () => {
    const control = join(dir, 'guest.sock');
    const { child, ready } = await startProcess([
      '--listen',
      '127.0.0.1:0',
      '--control',
      control,
      '--nondeterministic',
    ]);
    expect(ready.control).toBe(`unix:${control}`);
    const port = Number(ready.listen.split(':').pop());

    const client = await LineClient.open(port);
    client.send('SET a 1\nGET a\n');
    const [ok, value] = await client.lines(2);
    expect(ok).toMatch(/^OK ~[0-9a-f]{8}$/);
    expect(value).toMatch(/^1 ~[0-9a-f]{8}$/);

    const driver = new LabDriver(ready.control, { saveMs: 5000 });
    const state = JSON.parse((await driver.save()).toString());
    expect(state.kv).toEqual([['a', '1']]);
    await driver.close();
    client.close();

    child.kill('SIGTERM');
    const [code] = await withBound(once(child, 'exit'), 10_000, 'lab-guest exit');
    expect(code).toBe(0);
    expect(existsSync(control)).toBe(false);
  });

  it('refuses a bad --listen with a clear error and exit status 2', async () => {
    const child = spawn(
      'node',
      ['bin/colo-proxy.js', 'lab-guest', '--listen', 'nowhere', '--control', join(dir, 'x.sock')],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await withBound(once(child, 'exit'), 15_000, 'lab-guest exit');
    expect(code).toBe(2);
    expect(stderr).toContain('config field "--listen": expected HOST:PORT');
  });
});
