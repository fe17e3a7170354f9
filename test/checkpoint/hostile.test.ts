import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/checkpoint/agent.js';
import { TlsRefusedError } from '../../src/checkpoint/errors.js';
import { loadControlSecurity, type TlsMaterial } from '../../src/checkpoint/tls.js';
import { connectControl, listenControl, parseEndpoint } from '../../src/checkpoint/transport.js';
import { silentLogger } from '../../src/log.js';
import { makeCa, makeCert, pkiFiles } from '../support/pki.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';
import { CliProcess } from './cli-process.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, withTimeout } from './harness.js';
import { RawPeer } from './raw-peer.js';

/** The agent and the listening transport against peers that do not play by the protocol (issue 17). */

const HELLO = 0x100n;
const HEARTBEAT = 0x101n;
const NEW = 0x47n;
const SUSPENDED = 0x48n;
const READY = 0x46n;
const ABORT = 0x103n;

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Resolves once `condition` holds, polling every 10 ms; rejects after `ms`. */
function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  return withTimeout(
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
    })(),
    ms,
    what,
  );
}

/** A logger whose lines the test reads. */
function capturedLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('agent', () => {
  it('stays not ready, and says why, when the primary aborts the seeding checkpoint', async () => {
    const { port, accepted, server } = await RawPeer.listen();
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const driver = new FakeDriver();
    const { logger, lines } = capturedLogger();
    const agent = new Agent({ driver, timeouts: fastTimeouts, logger });
    cleanup.push(() => agent.close());
    const readyEvents: unknown[] = [];
    agent.on('ready', (e) => readyEvents.push(e));
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const served = agent.serve(socket);
    const primary = await accepted;
    cleanup.push(() => primary.close());

    expect(await primary.readWord()).toBe(HELLO);
    expect(await primary.readWord()).toBe(1n);
    primary.send(HELLO, 1, NEW);
    const next = async (): Promise<bigint> => {
      for (;;) {
        const word = await primary.readWord();
        if (word !== HEARTBEAT) return word;
      }
    };
    expect(await next()).toBe(SUSPENDED);
    primary.send(ABORT);

    const end = await withTimeout(served, 2000, 'the session to end');
    expect(end.kind).toBe('dropped');
    expect(end.kind !== 'shutdown' && end.error.code).toBe('COLO_CKPT_SEED_ABORTED');
    expect(readyEvents).toEqual([]);
    // What the agent sent after SUSPENDED: no READY (an ERROR, heartbeats, then the close).
    await primary.closed;
    const words = Buffer.concat(primary.received);
    const sent = Array.from({ length: words.length / 8 }, (_, i) => words.readBigUInt64BE(8 * i));
    expect(sent).not.toContain(READY);
    expect(driver.calls).toEqual(['suspend', 'resume']);
    expect(driver.loaded).toEqual([]);
    const why = lines.find((l) => l.msg === 'session with the primary ended: waiting to be re-seeded');
    expect(String(why?.err)).toContain('aborted the seeding checkpoint');
  });
});

describeWith([hasCommand('openssl', 'openssl')], 'TLS listener under idle and refused connections', () => {
  let dir = '';
  let material: TlsMaterial;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'colo-hostile-'));
    makeCa(dir, 'good');
    makeCa(dir, 'rogue');
    makeCert(dir, 'good', 'primary');
    makeCert(dir, 'good', 'secondary');
    makeCert(dir, 'rogue', 'intruder');
    material = (await loadControlSecurity({ kind: 'tls', ...pkiFiles(dir, 'good', 'primary') }, silentLogger))!;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `count` TCP connections that never send a byte; resolves once the listener holds them all. */
  async function idleClients(port: number, count: number): Promise<net.Socket[]> {
    const clients = Array.from({ length: count }, () => net.connect(port, '127.0.0.1'));
    for (const client of clients) client.on('error', () => undefined);
    await Promise.all(clients.map((client) => once(client, 'connect')));
    cleanup.push(() => clients.forEach((client) => client.destroy()));
    return clients;
  }

  it('closes a connection that never starts its handshake after handshakeMs, naming the peer', async () => {
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), material, { handshakeMs: 300 });
    cleanup.push(() => listener.close());
    const refused: [TlsRefusedError, string][] = [];
    listener.on('refused', (error, peer) => refused.push([error, peer]));
    const port = (listener.address as { port: number }).port;
    const [client] = await idleClients(port, 1);
    const clientPort = client.localPort;
    await withTimeout(once(client, 'close'), 3000, 'the server to close the idle connection');
    await until(() => listener.sockets.size === 0, 1000, 'the listener to forget the connection');
    expect(refused).toHaveLength(1);
    expect(refused[0][0].message).toMatch(/handshake timeout/i);
    expect(refused[0][1]).toBe(`127.0.0.1:${clientPort}`);
  });

  it('names a refused TCP peer by its address, not "unix"', async () => {
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), material);
    cleanup.push(() => listener.close());
    const refused = once(listener, 'refused') as Promise<[TlsRefusedError, string]>;
    const intruder = {
      ...(await loadControlSecurity({ kind: 'tls', ...pkiFiles(dir, 'rogue', 'intruder') }, silentLogger))!,
      ca: material.ca,
    };
    const port = (listener.address as { port: number }).port;
    const attempt = connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), intruder, 1000).then(
      (stream) => {
        // Under TLS 1.3 the client learns of the refusal at its first read.
        stream.on('error', () => undefined);
        stream.resume();
        return stream;
      },
      () => null,
    );
    const [, peer] = await withTimeout(refused, 3000, 'refused');
    expect(peer).toMatch(/^127\.0\.0\.1:\d+$/);
    (await attempt)?.destroy();
  });

  it('close() ends pending handshakes at once', async () => {
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), material, { handshakeMs: 60_000 });
    const port = (listener.address as { port: number }).port;
    const clients = await idleClients(port, 50);
    await until(() => listener.sockets.size === 50, 3000, 'the listener to hold 50 connections');
    await withTimeout(listener.close(), 2000, 'close() with 50 pending handshakes');
    await withTimeout(
      Promise.all(clients.map((client) => (client.destroyed ? null : once(client, 'close')))),
      2000,
      'every client to see its connection closed',
    );
  });

  it('colo-proxy secondary finishes SIGTERM promptly with 200 handshakes pending', async () => {
    const files = pkiFiles(dir, 'good', 'secondary');
    const secondary = new CliProcess([
      'secondary',
      '--listen',
      '127.0.0.1:0',
      '--tls-ca',
      files.ca,
      '--tls-cert',
      files.cert,
      '--tls-key',
      files.key,
      '--driver-suspend',
      'true',
      '--driver-load',
      'cat',
      '--driver-resume',
      'true',
    ]);
    cleanup.push(async () => {
      secondary.kill('SIGKILL');
      await secondary.exited;
    });
    const listening = await secondary.waitFor('stdout', (e) => e.event === 'listening', 20_000, 'listening');
    const port = Number(String(listening.endpoint).split(':').at(-1));
    const clients = await idleClients(port, 200);
    const started = performance.now();
    secondary.kill('SIGTERM');
    const { code } = await withTimeout(secondary.exited, 5000, 'the secondary to exit after SIGTERM');
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(5000);
    await withTimeout(
      Promise.all(clients.map((client) => (client.destroyed ? null : once(client, 'close')))),
      2000,
      'every client to see its connection closed',
    );
  }, 30_000);
});
