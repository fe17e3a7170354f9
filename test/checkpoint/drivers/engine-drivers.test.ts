import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatEndpoint, type Endpoint } from '../../../src/checkpoint/transport.js';
import { loadCheckpointConfig } from '../../../src/config/checkpoint.js';
import { GuestControlServer } from '../../../src/lab/guest-control.js';
import { LabGuest } from '../../../src/lab/guest.js';
import { LineClient } from '../../lab/line-client.js';
import { protectPair } from '../../support/checkpoint-pair.js';

/**
 * The drivers under the real protocol: a coordinator and an agent on loopback TCP, each built from a config
 * the way the commands build them (flags -> loadCheckpointConfig -> createDriver).
 */

const dir = mkdtempSync(join(tmpdir(), 'colo-engine-drivers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const fast = {
  waitTimeout: '2000',
  transferTimeout: '5000',
  loadWaitTimeout: '5000',
  heartbeatInterval: '100',
  heartbeatTimeout: '1000',
};

function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Coordinator listening on an ephemeral port, agent dialling it; resolves once the pair is protected. */
function protect(primaryFlags: Record<string, unknown>, secondaryFlags: Record<string, unknown>) {
  const primaryConfig = loadCheckpointConfig(
    undefined,
    { ...fast, ...primaryFlags, listen: '127.0.0.1:0', plaintext: true },
    'primary',
  );
  const secondaryConfig = (listening: Endpoint) =>
    loadCheckpointConfig(
      undefined,
      { ...fast, ...secondaryFlags, connect: formatEndpoint({ ...listening, mode: 'connect' }), plaintext: true },
      'secondary',
    );
  return protectPair(primaryConfig, secondaryConfig, cleanups);
}

async function labVm(name: string) {
  const guest = new LabGuest();
  const control = new GuestControlServer(guest);
  const { port } = await guest.listen('127.0.0.1', 0);
  const address = await control.listen({ kind: 'unix', path: join(dir, `${name}.sock`) });
  cleanups.push(
    () => control.close(),
    () => guest.close(),
  );
  return { guest, port, address };
}

/** A guest's application state from its saved state (the rest is where its own connections stand). */
function keyValues(guest: LabGuest): unknown {
  return (JSON.parse(guest.save().toString('utf8')) as { kv: unknown }).kv;
}

describe('drivers under the checkpoint protocol', () => {
  it('lab driver: the secondary guest holds the primary guest state after a checkpoint', async () => {
    const primary = await labVm('primary');
    const secondary = await labVm('secondary');
    const client = await LineClient.open(primary.port);
    cleanups.push(() => client.close());
    client.send('SET before-protection 1\n');
    await client.lines(1);

    const { coordinator } = await protect({ labControl: primary.address }, { labControl: secondary.address });
    // The initial sync already seeded the secondary with the primary's state.
    expect(keyValues(secondary.guest)).toEqual(keyValues(primary.guest));

    client.send('SET after 2\nINCR hits\n');
    await client.lines(3);
    expect(keyValues(secondary.guest)).not.toEqual(keyValues(primary.guest));
    const resumed = Promise.all([once(primary.guest, 'resumed'), once(secondary.guest, 'resumed')]);
    const outcome = await bounded(coordinator.checkpoint('test'), 10_000, 'checkpoint');
    expect(outcome.ok).toBe(true);
    // The outcome arrives at LOADED, before the primary resumes (the caller flushes first): wait for both.
    expect(keyValues(secondary.guest)).toEqual(keyValues(primary.guest));
    await bounded(resumed, 5000, 'both guests resumed');

    const replica = await LineClient.open(secondary.port);
    cleanups.push(() => replica.close());
    replica.send('GET after\nINCR hits\n');
    expect(await replica.lines(2)).toEqual(['2', '2']);
  });

  it('exec driver: an 8 MiB state saved by a hook on the primary is loaded by a hook on the secondary', async () => {
    const source = join(dir, 'primary.state');
    const target = join(dir, 'secondary.state');
    const log = join(dir, 'hooks.log');
    writeFileSync(source, Buffer.alloc(8 << 20, 0x5a));
    const note = (who: string) => `echo ${who}-$COLO_HOOK >> ${log}`;
    const { coordinator } = await protect(
      { execSuspend: note('p'), execSave: `cat ${source}`, execResume: note('p') },
      { execSuspend: note('s'), execLoad: `cat > ${target}`, execResume: note('s') },
    );
    writeFileSync(source, Buffer.concat([Buffer.from('second checkpoint'), Buffer.alloc(8 << 20, 0xa5)]));
    const outcome = await bounded(coordinator.checkpoint('test'), 20_000, 'checkpoint');
    expect(outcome.ok).toBe(true);
    expect(readFileSync(target).equals(readFileSync(source))).toBe(true);
    const hooks = readFileSync(log, 'utf8').trim().split('\n');
    expect(hooks.filter((line) => line === 's-suspend').length).toBeGreaterThanOrEqual(1);
    expect(hooks.filter((line) => line === 's-resume').length).toBeGreaterThanOrEqual(1);
  });

  it('exec driver: a failing load hook on the secondary aborts the checkpoint and loses the secondary', async () => {
    const flag = join(dir, 'fail-load');
    const { coordinator } = await protect(
      { execSuspend: 'true', execSave: 'printf state', execResume: 'true' },
      {
        execSuspend: 'true',
        execLoad: `cat >/dev/null; if [ -e ${flag} ]; then echo corrupt >&2; exit 4; fi`,
        execResume: 'true',
      },
    );
    writeFileSync(flag, '');
    const lost = once(coordinator, 'secondary-lost');
    const outcome = await bounded(coordinator.checkpoint('test'), 10_000, 'checkpoint');
    expect(outcome.ok).toBe(false);
    await bounded(lost, 5000, 'secondary-lost');
  });
});
