import { once } from 'node:events';
import type { Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { STREAM_HISTORY } from '../../src/lab/guest-streams.js';
import { LabGuest } from '../../src/lab/guest.js';
import { freePorts } from '../support/qemu.js';
import { LineClient } from './line-client.js';

const guests: LabGuest[] = [];
const clients: LineClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const g of guests.splice(0)) await g.close();
});

/**
 * A primary and a secondary guest and one client connected to both from the same address and port, the way
 * both VMs see a client behind the proxy; `mirror` sends the same bytes to both.
 */
async function mirroredPair(secondaryOptions: ConstructorParameters<typeof LabGuest>[0] = {}): Promise<{
  primary: LabGuest;
  secondary: LabGuest;
  toPrimary: LineClient;
  toSecondary: LineClient;
  mirror: (text: string) => void;
}> {
  const primary = new LabGuest();
  const secondary = new LabGuest(secondaryOptions);
  guests.push(primary, secondary);
  const p = await primary.listen('127.0.0.1', 0);
  const s = await secondary.listen('127.0.0.1', 0);
  // Both connections bind the port explicitly (libuv sets SO_REUSEADDR on an explicit bind, not otherwise).
  const [clientPort] = await freePorts(1);
  const toPrimary = await LineClient.open(p.port, '127.0.0.1', clientPort);
  const toSecondary = await LineClient.open(s.port, '127.0.0.1', clientPort);
  clients.push(toPrimary, toSecondary);
  const mirror = (text: string): void => {
    toPrimary.send(text);
    toSecondary.send(text);
  };
  mirror('SET a 1\n');
  await Promise.all([toPrimary.lines(1), toSecondary.lines(1)]);
  return { primary, secondary, toPrimary, toSecondary, mirror };
}

describe('lab guest snapshot: where each connection stands', () => {
  it('a request the secondary answered before the checkpoint and the primary after it is applied again on load', async () => {
    const { primary, secondary, toPrimary, toSecondary, mirror } = await mirroredPair();
    primary.suspend(); // the checkpoint has begun: the primary holds what arrives now
    const held = once(primary, 'held');
    mirror('SET k v\n');
    await held;
    expect((await toSecondary.lines(2))[1]).toBe('OK'); // the secondary answered it before the checkpoint

    expect(secondary.load(primary.save())).toBeNull(); // a state without k
    primary.resume();
    expect((await toPrimary.lines(2))[1]).toBe('OK');

    mirror('GET k\n');
    expect((await toPrimary.lines(3))[2]).toBe('v');
    expect((await toSecondary.lines(3))[2]).toBe('v');
    expect(secondary.status().requests).toBe(3); // applied again, not counted again
  });

  it('a request the primary answered before the checkpoint gets the primary reply on the secondary, once', async () => {
    const { primary, secondary, toPrimary, toSecondary, mirror } = await mirroredPair();
    secondary.suspend();
    const held = once(secondary, 'held');
    mirror('INCR n\n');
    await held;
    expect((await toPrimary.lines(2))[1]).toBe('1');

    expect(secondary.load(primary.save())).toBeNull(); // n is already 1 in it
    secondary.resume();
    expect((await toSecondary.lines(2))[1]).toBe('1'); // the primary's reply, not a second increment

    mirror('INCR n\n');
    expect((await toPrimary.lines(3))[2]).toBe('2');
    expect((await toSecondary.lines(3))[2]).toBe('2');
    expect(secondary.status().requests).toBe(3);
  });

  it('connections at the same place are left alone, and other clients are not matched', async () => {
    const { primary, secondary, toPrimary, toSecondary, mirror } = await mirroredPair();
    const other = await LineClient.open((await secondary.listen('127.0.0.1', 0)).port);
    clients.push(other);
    other.send('INCR solo\n');
    await other.lines(1);
    secondary.load(primary.save());
    mirror('INCR n\n');
    other.send('INCR solo\n');
    expect((await toPrimary.lines(2))[1]).toBe('1');
    expect((await toSecondary.lines(2))[1]).toBe('1');
    expect((await other.lines(2))[1]).toBe('1'); // the load replaced solo's count, and owed nothing
  });

  it('a gap wider than the history is left as it is, and said in the log', async () => {
    const warnings: unknown[] = [];
    const logger = { warn: (fields: unknown) => warnings.push(fields), info: () => {}, debug: () => {} };
    const { primary, secondary, toPrimary, mirror } = await mirroredPair({ logger: logger as unknown as Logger });
    secondary.suspend();
    const requests = STREAM_HISTORY + 1;
    mirror('INCR n\n'.repeat(requests));
    await toPrimary.lines(1 + requests);
    expect(secondary.load(primary.save())).toBeNull();
    expect(warnings).toEqual([expect.objectContaining({ answered: 1, primaryAnswered: 1 + requests })]);
  });

  it('refuses a state whose stream positions are malformed, and keeps its own', async () => {
    const { secondary, toSecondary } = await mirroredPair();
    const bad = { format: 'colo-lab-guest/1', kv: [], streams: [{ peer: 'x', answered: -1, replies: [] }] };
    expect(secondary.load(Buffer.from(JSON.stringify(bad)))).toBe('bad-format');
    toSecondary.send('GET a\n');
    expect((await toSecondary.lines(2))[1]).toBe('1');
  });
});
