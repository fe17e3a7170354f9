import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { inlineConfigSchema } from '../../src/config/inline.js';
import { startInlineApp, type InlineApp } from '../../src/inline/app.js';
import { silentLogger } from '../../src/log.js';
import { MemoryApp } from '../support/inline-app.js';

/**
 * When startInlineApp calls afterOpen (where `run` drops root): after every file and listener is open, before
 * anything is dialled or spawned. Memory ports; the checkpoint endpoint is a unix socket of the test's.
 */

const dir = mkdtempSync(join(tmpdir(), 'colo-privileges-order-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let app: InlineApp | null = null;
let server: Server | null = null;
afterEach(async () => {
  await app?.close();
  server?.close();
  app = null;
  server = null;
});

function configWith(endpoint: string, name: string) {
  return inlineConfigSchema.parse({
    interfaces: { client: 'c0', primary: 'p0', secondary: 's0' },
    checkpoint: {
      endpoint,
      plaintext: true,
      driver: { kind: 'exec', suspend: 'true', save: 'true', resume: 'true' },
      // A dial that failed would not be retried within the test.
      timeouts: { retryMs: 60_000, maxRetryMs: 60_000 },
    },
    offloadCheck: false,
    metrics: '127.0.0.1:0',
    events: join(dir, `${name}.ndjson`),
    divergences: join(dir, `${name}.pcapng`),
    primaryHealth: { kind: 'exec', command: `touch '${join(dir, `${name}.health`)}'`, intervalMs: 1 },
  });
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('startInlineApp: afterOpen, where run drops root', () => {
  it('connect: runs after the files and the metrics listener are open, before the secondary is dialled or a health check runs', async () => {
    const path = join(dir, 'agent.sock');
    let dialled = 0;
    const connected = new Promise<void>((resolve) => {
      server = createServer((socket) => {
        dialled++;
        socket.on('error', () => undefined);
        resolve();
      });
    });
    const seen: Array<Record<string, boolean | number>> = [];
    app = await startInlineApp(configWith(`connect:unix:${path}`, 'dial'), silentLogger, {
      ...new MemoryApp().deps,
      afterOpen: () => {
        seen.push({
          events: existsSync(join(dir, 'dial.ndjson')),
          divergences: existsSync(join(dir, 'dial.pcapng')),
          health: existsSync(join(dir, 'dial.health')),
          dialled,
        });
        server!.listen(path);
      },
    });
    expect(seen).toEqual([{ events: true, divergences: true, health: false, dialled: 0 }]);
    expect(app.stats?.port).toBeGreaterThan(0);
    // The secondary's socket exists only from afterOpen on, and a failed dial is retried a minute later: a
    // connection now means the first dial came after afterOpen.
    await Promise.race([connected, new Promise((_, reject) => setTimeout(() => reject(new Error('no dial')), 5000))]);
    expect(dialled).toBeGreaterThan(0);
  }, 15_000);

  it('listen: runs once the checkpoint endpoint is bound', async () => {
    const path = join(dir, 'listen.sock');
    const reachable: boolean[] = [];
    let check: Promise<void> = Promise.resolve();
    app = await startInlineApp(configWith(`listen:unix:${path}`, 'listen'), silentLogger, {
      ...new MemoryApp().deps,
      afterOpen: () => {
        reachable.push(existsSync(path));
        check = canConnect(path).then((ok) => void reachable.push(ok));
      },
    });
    await check;
    expect(reachable).toEqual([true, true]);
  }, 15_000);
});
