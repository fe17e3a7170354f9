import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Agent } from '../../src/checkpoint/agent.js';
import { Coordinator } from '../../src/checkpoint/coordinator.js';
import { TlsRefusedError } from '../../src/checkpoint/errors.js';
import { clientTlsOptions, loadControlSecurity, type TlsMaterial } from '../../src/checkpoint/tls.js';
import { connectControl, listenControl, parseEndpoint, type ControlListener } from '../../src/checkpoint/transport.js';
import { silentLogger } from '../../src/log.js';
import { makeCa, makeCert, pkiFiles } from '../support/pki.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, protectedPair, withTimeout, type Pair } from './harness.js';

let dir = '';
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function material(ca: string, name: string): Promise<TlsMaterial> {
  const loaded = await loadControlSecurity({ kind: 'tls', ...pkiFiles(dir, ca, name) }, silentLogger);
  return loaded as TlsMaterial;
}

describeWith([hasCommand('openssl', 'openssl')], 'TLS with mutual certificate authentication', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'colo-tls-'));
    makeCa(dir, 'good');
    makeCa(dir, 'rogue');
    makeCert(dir, 'good', 'primary');
    makeCert(dir, 'good', 'secondary');
    makeCert(dir, 'rogue', 'intruder');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let pair: Pair | null = null;
  afterEach(async () => {
    await pair?.close();
    pair = null;
  });

  it('runs the protocol over TLS when both certificates come from the CA', async () => {
    const primary = await material('good', 'primary');
    pair = await protectedPair({ material: primary });
    pair.primary.state = Buffer.from('over TLS');
    expect((await pair.coordinator.checkpoint('payload')).ok).toBe(true);
    expect(pair.secondary.state.toString()).toBe('over TLS');
  });

  it.each([
    ['the secondary dials (reads into a reused buffer)', false],
    ['the primary dials', true],
  ])('carries a 24 MiB state intact over TLS when %s, twice', async (_label, agentListens) => {
    // Both ends share this process and its one core, so a 24 MiB TLS transfer needs more than the fast bounds.
    const timeouts = { ...fastTimeouts, transferMs: 20_000, loadMs: 5000, heartbeatLossMs: 5000 };
    pair = await protectedPair({
      material: await material('good', 'primary'),
      agentListens,
      coordinator: { timeouts },
      agent: { timeouts },
    });
    for (const seed of [1, 2]) {
      const state = Buffer.alloc(24 * 1024 * 1024);
      for (let i = 0; i < state.length; i += 4) state.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
      pair.primary.state = state;
      const outcome = await pair.coordinator.checkpoint('payload');
      expect(outcome.ok ? 'ok' : outcome.error.message).toBe('ok');
      expect(pair.secondary.state.equals(state)).toBe(true);
    }
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const listener: ControlListener = await listenControl(
      parseEndpoint('listen:127.0.0.1:0'),
      await material('good', 'primary'),
    );
    const coordinator = new Coordinator({ driver: new FakeDriver(), timeouts: fastTimeouts, checkpointTimerMs: null });
    cleanup.push(
      () => listener.close(),
      () => coordinator.close(),
    );
    const connections: string[] = [];
    listener.on('connection', (stream, peer) => {
      connections.push(peer);
      coordinator.attach(stream, peer);
    });
    const refused = once(listener, 'refused') as Promise<[TlsRefusedError, string]>;
    // The intruder trusts the right CA (so it accepts the server) but presents a rogue certificate.
    const intruder = { ...(await material('rogue', 'intruder')), ca: (await material('good', 'primary')).ca };
    const agent = new Agent({ driver: new FakeDriver(), timeouts: fastTimeouts });
    cleanup.push(() => agent.close());
    const port = (listener.address as { port: number }).port;
    const attempt = connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), intruder, 1000).then(
      (stream) => agent.serve(stream),
      (err: Error) => err,
    );
    const [error] = await withTimeout(refused, 2000, 'refused');
    expect(error).toBeInstanceOf(TlsRefusedError);
    expect(error.code).toBe('COLO_CKPT_TLS');
    const result = await withTimeout(attempt, 2000, 'the intruder to give up');
    // Depending on the TLS version the client learns it at connect or at its first read; either way it is out.
    if (result instanceof Error) expect(result).toBeInstanceOf(TlsRefusedError);
    else expect(result.kind).toBe('dropped');
    // A refused certificate is not a seed-only primary closing on HELLO: the agent still announces.
    expect(agent.announces).toBe(true);
    expect(connections).toEqual([]);
    expect(coordinator.isProtected).toBe(false);
  });

  it('takes a TLS primary that accepted the certificate and then closed on HELLO for a seed-only one', async () => {
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), await material('good', 'primary'));
    cleanup.push(() => listener.close());
    // A seed-only primary over TLS: HELLO is garbage to it, so it closes once it has read the first word.
    listener.on('connection', (stream) => stream.once('data', () => stream.end()));
    const agent = new Agent({ driver: new FakeDriver(), timeouts: fastTimeouts });
    cleanup.push(() => agent.close());
    const port = (listener.address as { port: number }).port;
    const stream = await connectControl(
      parseEndpoint(`connect:127.0.0.1:${port}`),
      await material('good', 'secondary'),
      1000,
    );
    const end = await withTimeout(agent.serve(stream), 2000, 'the agent to be dropped');
    expect(end.kind).toBe('dropped');
    expect(agent.announces).toBe(false);
  });

  it('refuses a server whose certificate another CA signed', async () => {
    const rogueServer = { ...(await material('rogue', 'intruder')), ca: (await material('good', 'primary')).ca };
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), rogueServer);
    cleanup.push(() => listener.close());
    const port = (listener.address as { port: number }).port;
    const error = await connectControl(
      parseEndpoint(`connect:127.0.0.1:${port}`),
      await material('good', 'secondary'),
      1000,
    ).catch((err: Error) => err);
    expect(error).toBeInstanceOf(TlsRefusedError);
  });

  it('negotiates AES-128-GCM under TLS 1.3 and an ECDHE AEAD suite with a TLS 1.2-only peer', async () => {
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), await material('good', 'primary'));
    cleanup.push(() => listener.close());
    const accepted = once(listener, 'connection') as Promise<[TLSSocket, string]>;
    const port = (listener.address as { port: number }).port;
    const client = (await connectControl(
      parseEndpoint(`connect:127.0.0.1:${port}`),
      await material('good', 'secondary'),
      1000,
    )) as TLSSocket;
    const [server] = await withTimeout(accepted, 2000, 'the connection');
    expect(client.getCipher().name).toBe('TLS_AES_128_GCM_SHA256');
    expect(server.getCipher().name).toBe('TLS_AES_128_GCM_SHA256');
    client.destroy();

    const legacyPeer = tlsConnect({
      ...clientTlsOptions(await material('good', 'secondary')),
      host: '127.0.0.1',
      port,
      maxVersion: 'TLSv1.2',
    });
    cleanup.push(() => void legacyPeer.destroy());
    await withTimeout(once(legacyPeer, 'secureConnect'), 2000, 'the TLS 1.2 handshake');
    expect(legacyPeer.getProtocol()).toBe('TLSv1.2');
    expect(legacyPeer.getCipher().name).toMatch(/^ECDHE-ECDSA-AES128-GCM-SHA256$/);
  });

  it('refuses a plaintext client on a TLS endpoint', async () => {
    const listener = await listenControl(parseEndpoint('listen:127.0.0.1:0'), await material('good', 'primary'));
    cleanup.push(() => listener.close());
    const connections: string[] = [];
    listener.on('connection', (_s, peer) => connections.push(peer));
    const refused = once(listener, 'refused');
    const port = (listener.address as { port: number }).port;
    const stream = await connectControl(parseEndpoint(`connect:127.0.0.1:${port}`), null, 1000);
    stream.write(Buffer.from('0000000000000046', 'hex'));
    await withTimeout(refused, 2000, 'refused');
    expect(connections).toEqual([]);
    stream.destroy();
  });
});

it('warns at startup when the control channel is plaintext', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const material = await loadControlSecurity({ kind: 'plaintext' }, pino({ level: 'info' }, sink));
  expect(material).toBeNull();
  expect(lines.join('')).toMatch(/"level":40.*PLAINTEXT/);
});

it('names the TLS field whose file cannot be read', async () => {
  await expect(
    loadControlSecurity({ kind: 'tls', ca: '/nonexistent/ca.pem', cert: '/x', key: '/y' }, silentLogger),
  ).rejects.toMatchObject({ code: 'COLO_CONFIG', field: 'tls.ca' });
});
