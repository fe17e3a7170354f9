import { once } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { downloadPattern, LabGuest } from '../../src/lab/guest.js';
import { LineClient } from './line-client.js';

const guests: LabGuest[] = [];
const clients: LineClient[] = [];

async function startGuest(nondeterministic = false): Promise<{ guest: LabGuest; port: number }> {
  const guest = new LabGuest({ nondeterministic, maxLineBytes: 1024 });
  guests.push(guest);
  const { port } = await guest.listen('127.0.0.1', 0);
  return { guest, port };
}

async function client(port: number): Promise<LineClient> {
  const c = await LineClient.open(port);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const g of guests.splice(0)) await g.close();
});

/** The same request script, for comparing two guests' answers. */
const SCRIPT = 'GET a\nINCR hits\nINCR hits\nGET name\nSET name bob smith\nGET name\nDEL a\nGET a\nPING\n';

describe('lab guest service', () => {
  it('answers SET, GET, INCR, DEL and PING over TCP, in order, per client', async () => {
    const { port } = await startGuest();
    const a = await client(port);
    const b = await client(port);
    a.send('SET k hello world\nGET k\nINCR n\nINCR n\nGET missing\nDEL k\nDEL k\nPING\n');
    expect(await a.lines(8)).toEqual(['OK', 'hello world', '1', '2', 'NIL', '1', '0', 'PONG']);
    b.send('GET n\r\nINCR n\r\nSET u h\u00e9llo \u2603\r\nGET u\r\n');
    await b.lines(4);
    expect(b.received.toString('utf8').split('\n').slice(0, 4)).toEqual(['2', '3', 'OK', 'h\u00e9llo \u2603']);
  });

  it('answers bad requests with ERR, counts them, and keeps serving', async () => {
    const { guest, port } = await startGuest();
    const c = await client(port);
    c.send('FROB x\nSET onlykey\nSET s abc\nINCR s\nGET s\n');
    const lines = await c.lines(5);
    expect(lines[0]).toBe('ERR unknown command "FROB"');
    expect(lines[1]).toBe('ERR usage: SET key value');
    expect(lines[3]).toBe('ERR value is not an integer');
    expect(lines[4]).toBe('abc');
    expect(guest.status().badRequests).toBe(3);
  });

  it('refuses a line longer than the limit with ERR, a count and a closed connection', async () => {
    const { guest, port } = await startGuest();
    const partial = await client(port);
    partial.send('SET big ' + 'x'.repeat(4096));
    await partial.until((cl) => cl.closed);
    expect(partial.text()).toBe('ERR line longer than 1024 bytes\n');
    // Requests before the overlong line are answered first, a complete overlong line is refused too,
    // and nothing after it is read.
    const whole = await client(port);
    whole.send(`PING\nSET big ${'y'.repeat(2000)}\nGET big\n`);
    await whole.until((cl) => cl.closed);
    expect(whole.text()).toBe('PONG\nERR line longer than 1024 bytes\n');
    expect(guest.status().badRequests).toBe(2);
  });

  it('streams DOWNLOAD n as exactly n bytes of the deterministic pattern', async () => {
    const { port } = await startGuest();
    const c = await client(port);
    const n = 3 * 1024 * 1024 + 5;
    c.send(`DOWNLOAD ${n}\nPING\n`);
    await c.until((cl) => cl.length >= n + 5);
    expect(c.received.subarray(0, n).equals(downloadPattern(0, n))).toBe(true);
    expect(c.received.subarray(n).toString()).toBe('PONG\n');
  });

  it('the download pattern is each record offset in 15 digits and a newline, at any offset', () => {
    const reference = (offset: number, length: number): Buffer => {
      let text = '';
      for (let record = Math.floor(offset / 16); text.length < (offset % 16) + length; record++) {
        text += `${String(record * 16).padStart(15, '0')}\n`;
      }
      return Buffer.from(text.slice(offset % 16, (offset % 16) + length), 'latin1');
    };
    fc.assert(
      fc.property(fc.oneof(fc.nat(30_000), fc.integer({ min: 0, max: 10 ** 14 })), fc.nat(25_000), (offset, length) => {
        expect(downloadPattern(offset, length).equals(reference(offset, length))).toBe(true);
      }),
      { numRuns: 200 },
    );
    expect(downloadPattern(9984, 48).toString()).toBe('000000000009984\n000000000010000\n000000000010016\n');
  });

  it('a state saved on one guest and loaded into another gives identical replies afterwards', async () => {
    const first = await startGuest();
    const second = await startGuest();
    const c1 = await client(first.port);
    c1.send('SET a 1\nSET name alice\nINCR hits\nSET unicode h\u00e9llo\n');
    await c1.lines(4);
    second.guest.load(first.guest.save());

    c1.send(SCRIPT);
    const c2 = await client(second.port);
    c2.send(SCRIPT);
    const expected = ['1', '2', '3', 'alice', 'OK', 'bob smith', '1', 'NIL', 'PONG'];
    expect((await c1.lines(13)).slice(4)).toEqual(expected);
    expect(await c2.lines(9)).toEqual(expected);
  });

  it('refuses a bad state and keeps the one it had', async () => {
    const { guest, port } = await startGuest();
    const c = await client(port);
    c.send('SET keep me\n');
    await c.lines(1);
    expect(guest.load(Buffer.from('not json'))).toBe('not-json');
    expect(guest.load(Buffer.from('{"format":"other","kv":[]}'))).toBe('bad-format');
    expect(guest.load(Buffer.from('{"format":"colo-lab-guest/1","kv":[["a",1]]}'))).toBe('bad-format');
    c.send('GET keep\n');
    expect((await c.lines(2))[1]).toBe('me');
  });

  it('while suspended it answers nothing, old or new connection; held requests are answered on resume', async () => {
    const { guest, port } = await startGuest();
    const old = await client(port);
    guest.suspend();
    const held = once(guest, 'held');
    old.send('SET x 1\n');
    await held;
    const fresh = await client(port);
    const heldAgain = once(guest, 'held');
    fresh.send('GET x\n');
    await heldAgain;
    // Give any wrongly sent reply a full round trip on another connection to arrive before looking.
    const probe = await client(port);
    probe.send('PING\n');
    const probeHeld = once(guest, 'held');
    await probeHeld;
    expect(old.length + fresh.length + probe.length).toBe(0);
    expect(guest.status().heldRequests).toBe(3);

    guest.resume();
    expect(await old.lines(1)).toEqual(['OK']);
    expect(await fresh.lines(1)).toEqual(['1']);
    expect(await probe.lines(1)).toEqual(['PONG']);
  });

  it('a download stops while suspended and completes intact after resume', async () => {
    const { guest, port } = await startGuest();
    const c = await client(port);
    const n = 8 * 1024 * 1024;
    c.send(`DOWNLOAD ${n}\n`);
    await c.until((cl) => cl.length > 0);
    guest.suspend();
    const sentAtSuspend = guest.status().downloadBytes;
    // A control-like round trip: a request on another connection is held, proving the loop ran meanwhile.
    const other = await client(port);
    const held = once(guest, 'held');
    other.send('PING\n');
    await held;
    await new Promise((resolve) => setImmediate(resolve));
    expect(guest.status().downloadBytes).toBeLessThanOrEqual(sentAtSuspend + 16 * 1024);
    expect(guest.status().downloadBytes).toBeLessThan(n);
    guest.resume();
    await c.until((cl) => cl.length >= n, 20_000);
    expect(c.length).toBe(n);
    expect(c.received.equals(downloadPattern(0, n))).toBe(true);
  });

  it('nondeterministic mode makes two guests with the same state answer differently', async () => {
    const plainA = await startGuest(false);
    const plainB = await startGuest(false);
    const noisyA = await startGuest(true);
    const noisyB = await startGuest(true);
    const answers = async (port: number): Promise<string[]> => {
      const c = await client(port);
      c.send(SCRIPT);
      return c.lines(9);
    };
    expect(await answers(plainA.port)).toEqual(await answers(plainB.port));
    const a = await answers(noisyA.port);
    const b = await answers(noisyB.port);
    expect(a).not.toEqual(b);
    expect(a[0]).toMatch(/^NIL ~[0-9a-f]{8}$/);
    // Same application answers underneath the token: only the token diverges.
    const strip = (lines: string[]): string[] => lines.map((line) => line.replace(/ ~[0-9a-f]{8}$/, ''));
    expect(strip(a)).toEqual(strip(b));
  });
});
