import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { QmpClient, QmpConnectionError, QmpError, type QmpEvent } from '../../src/checkpoint/qmp.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-qmp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let sockets = 0;
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n';

interface Request {
  execute: string;
  id: number;
  arguments?: unknown;
}

/** A fake QMP server: greets, answers qmp_capabilities, and hands every later request to the test. */
async function fakeQmp(path = join(dir, `fake-${sockets++}.sock`)): Promise<{
  path: string;
  server: Server;
  next(): Promise<{ request: Request; socket: Socket }>;
}> {
  const queue: Array<{ request: Request; socket: Socket }> = [];
  const waiters: Array<(item: { request: Request; socket: Socket }) => void> = [];
  const server = createServer((socket) => {
    socket.write(GREETING);
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      // The client writes one JSON object per request with no separator: split on the closing brace depth.
      for (;;) {
        const end = objectEnd(text);
        if (end < 0) break;
        const request = JSON.parse(text.slice(0, end)) as Request;
        text = text.slice(end);
        if (request.execute === 'qmp_capabilities') {
          socket.write(`{"return": {}, "id": ${request.id}}\r\n`);
          continue;
        }
        const waiter = waiters.shift();
        if (waiter) waiter({ request, socket });
        else queue.push({ request, socket });
      }
    });
  });
  server.listen(path);
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return {
    path,
    server,
    next: () => {
      const item = queue.shift();
      return item ? Promise.resolve(item) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

function objectEnd(text: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  return -1;
}

async function open(path: string, options = {}): Promise<QmpClient> {
  const client = await QmpClient.connect(path, { timeoutMs: 2000, ...options });
  cleanups.push(() => client.close());
  return client;
}

describe('QmpClient against a fake QMP server', () => {
  it('matches replies to requests by id, whatever order they come in', async () => {
    const fake = await fakeQmp();
    const client = await open(fake.path);
    const first = client.execute('query-a');
    const second = client.execute('query-b');
    const a = await fake.next();
    const b = await fake.next();
    expect([a.request.execute, b.request.execute]).toEqual(['query-a', 'query-b']);
    b.socket.write(`{"return": "B", "id": ${b.request.id}}\r\n`);
    a.socket.write(`{"return": "A", "id": ${a.request.id}}\r\n`);
    expect(await first).toBe('A');
    expect(await second).toBe('B');
  });

  it('reassembles a reply split across reads and splits several replies in one read', async () => {
    const fake = await fakeQmp();
    const client = await open(fake.path);
    const events: QmpEvent[] = [];
    client.on('event', (event) => events.push(event));
    const one = client.execute('one');
    const two = client.execute('two');
    const a = await fake.next();
    const b = await fake.next();
    const reply = `{"return": {"status": "running"}, "id": ${a.request.id}}\r\n`;
    a.socket.write(reply.slice(0, 10));
    await new Promise((resolve) => setImmediate(resolve));
    a.socket.write(
      reply.slice(10) +
        '{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}\r\n' +
        `{"return": 2, "id": ${b.request.id}}\r\n`,
    );
    expect(await one).toEqual({ status: 'running' });
    expect(await two).toBe(2);
    expect(events).toEqual([{ event: 'STOP', data: {}, timestamp: { seconds: 1, microseconds: 2 } }]);
  });

  it("rejects with QEMU's error class and description, naming the command", async () => {
    const fake = await fakeQmp();
    const client = await open(fake.path);
    const result = client.execute('migrate', { uri: 'unix:/nowhere' });
    const { request, socket } = await fake.next();
    expect(request.arguments).toEqual({ uri: 'unix:/nowhere' });
    socket.write(`{"error": {"class": "GenericError", "desc": "no way"}, "id": ${request.id}}\r\n`);
    const err = await result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).errorClass).toBe('GenericError');
    expect((err as Error).message).toBe('QMP migrate failed: GenericError: no way');
  });

  it('times a command out, drops its late reply and keeps later replies in step', async () => {
    const fake = await fakeQmp();
    const client = await open(fake.path);
    const slow = client.execute('slow', undefined, 30);
    const late = await fake.next();
    const err = await slow.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpConnectionError);
    expect((err as QmpConnectionError).reason).toBe('timeout');
    expect((err as Error).message).toMatch(/QMP slow got no answer .* within 30 ms/);
    const next = client.execute('next');
    const current = await fake.next();
    late.socket.write(`{"return": "stale", "id": ${late.request.id}}\r\n`);
    current.socket.write(`{"return": "fresh", "id": ${current.request.id}}\r\n`);
    expect(await next).toBe('fresh');
  });

  it('fails the connection on a line over the bound and rejects what was waiting', async () => {
    const fake = await fakeQmp();
    const client = await open(fake.path, { maxLineBytes: 1024 });
    const closed = once(client, 'close') as Promise<[QmpConnectionError]>;
    const waiting = client.execute('query-x');
    const { socket } = await fake.next();
    socket.write(`{"return": "${'x'.repeat(2000)}`);
    const err = await waiting.catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/closed while waiting for query-x .*longer than 1024 bytes/);
    const [reason] = await closed;
    expect(reason.reason).toBe('protocol');
    expect(client.closed).toBe(true);
  });

  it('retries the connect until the socket appears', async () => {
    const path = join(dir, `late-${sockets++}.sock`);
    const connecting = QmpClient.connect(path, { timeoutMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fakeQmp(path);
    const client = await connecting;
    cleanups.push(() => client.close());
    expect(client.closed).toBe(false);
  });

  it('gives up on a socket that never appears, naming it', async () => {
    const path = join(dir, 'never.sock');
    const err = await QmpClient.connect(path, { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpConnectionError);
    expect((err as Error).message).toContain(`cannot connect to QMP socket ${path} within 50 ms`);
  });
});

describeWith([hasCommand('qemu-system-x86_64', 'qemu-system-x86')], 'QmpClient against QEMU', () => {
  async function startQemu(): Promise<{ child: ChildProcess; path: string }> {
    const path = join(dir, `qemu-${sockets++}.qmp`);
    const child = spawn(
      'qemu-system-x86_64',
      ['-M', 'pc', '-accel', 'tcg', '-m', '32', '-nodefaults', '-display', 'none', '-serial', 'none'].concat([
        '-qmp',
        `unix:${path},server=on,wait=off`,
      ]),
      { stdio: 'ignore' },
    );
    const exited = once(child, 'exit');
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    return { child, path };
  }

  it('negotiates capabilities and runs commands', async () => {
    const { path } = await startQemu();
    const client = await open(path);
    const status = await client.execute<{ status: string; running: boolean }>('query-status');
    expect(status.status).toBe('running');
  });

  it("rejects an unknown command with QEMU's class and description", async () => {
    const { path } = await startQemu();
    const client = await open(path);
    const err = await client.execute('no-such-command').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).errorClass).toBe('CommandNotFound');
    expect((err as QmpError).desc).toContain('no-such-command');
  });

  it('delivers STOP and RESUME events', async () => {
    const { path } = await startQemu();
    const client = await open(path);
    const seen: string[] = [];
    client.on('event', (event) => seen.push(event.event));
    const stopped = new Promise<void>((resolve) => client.on('event', (e) => e.event === 'RESUME' && resolve()));
    await client.execute('stop');
    await client.execute('cont');
    await stopped;
    expect(seen.filter((name) => name === 'STOP' || name === 'RESUME')).toEqual(['STOP', 'RESUME']);
  });

  it('rejects a command in flight when QEMU is killed', async () => {
    const { child, path } = await startQemu();
    const client = await open(path);
    // A stopped process reads nothing: the command is certainly still waiting when the kill comes.
    child.kill('SIGSTOP');
    const waiting = client.execute('query-status');
    child.kill('SIGKILL');
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpConnectionError);
    expect((err as Error).message).toBe(`QMP connection to ${path} closed while waiting for query-status`);
  });
});
