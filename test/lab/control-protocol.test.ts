import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONTROL_VERBS,
  ControlDecoder,
  encodeControl,
  parseControlAddress,
  type ControlMessage,
} from '../../src/lab/control-protocol.js';

function decodeAll(
  bytes: Buffer,
  cuts: number[],
  maxBody = 1 << 20,
): { messages: ControlMessage[]; error: string | null } {
  const decoder = new ControlDecoder(maxBody);
  const messages: ControlMessage[] = [];
  let error: string | null = null;
  let start = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    error = decoder.push(bytes.subarray(start, cut), messages) ?? error;
    start = cut;
  }
  return { messages, error };
}

describe('lab control protocol', () => {
  it('encodes a header line with the body length, then the body', () => {
    expect(Buffer.concat(encodeControl('LOAD', Buffer.from('abc'))).toString()).toBe('LOAD 3\nabc');
    expect(Buffer.concat(encodeControl('SUSPEND')).toString()).toBe('SUSPEND 0\n');
  });

  it('decodes any sequence of messages however the stream is split', () => {
    const message = fc.record({
      verb: fc.constantFrom(...CONTROL_VERBS),
      body: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), fc.array(fc.nat(2000), { maxLength: 10 }), (sent, cuts) => {
        const bytes = Buffer.concat(sent.flatMap((m) => encodeControl(m.verb, m.body)));
        const { messages, error } = decodeAll(bytes, cuts);
        expect(error).toBeNull();
        expect(messages.map((m) => [m.verb, m.body.toString('hex')])).toEqual(
          sent.map((m) => [m.verb, m.body.toString('hex')]),
        );
      }),
    );
  });

  it('accepts a CRLF header (typed by hand)', () => {
    const { messages } = decodeAll(Buffer.from('PING 0\r\n'), []);
    expect(messages.map((m) => m.verb)).toEqual(['PING']);
  });

  it('names what is wrong with a malformed stream and refuses what follows', () => {
    expect(decodeAll(Buffer.from('hello\n'), []).error).toBe('bad-header');
    expect(decodeAll(Buffer.from('REBOOT 0\n'), []).error).toBe('unknown-verb');
    expect(decodeAll(Buffer.from('LOAD 2000000\n'), []).error).toBe('body-too-large');
    expect(decodeAll(Buffer.from('X'.repeat(100)), [10, 50]).error).toBe('header-too-long');
    const decoder = new ControlDecoder(100);
    const out: ControlMessage[] = [];
    expect(decoder.push(Buffer.from('nope\n'), out)).toBe('bad-header');
    expect(decoder.push(Buffer.from('PING 0\n'), out)).toBe('bad-header');
    expect(out).toEqual([]);
  });

  it('reads control addresses: unix paths, unix:PATH, tcp:HOST:PORT and HOST:PORT', () => {
    expect(parseControlAddress('/run/guest.sock')).toEqual({ kind: 'unix', path: '/run/guest.sock' });
    expect(parseControlAddress('guest.sock')).toEqual({ kind: 'unix', path: 'guest.sock' });
    expect(parseControlAddress('unix:/tmp/a:1')).toEqual({ kind: 'unix', path: '/tmp/a:1' });
    expect(parseControlAddress('127.0.0.1:7001')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 7001 });
    expect(parseControlAddress('tcp:[::1]:7001')).toEqual({ kind: 'tcp', host: '::1', port: 7001 });
    expect(parseControlAddress('tcp:localhost')).toBeNull();
    expect(parseControlAddress('tcp:host:70000')).toBeNull();
    expect(parseControlAddress('')).toBeNull();
  });
});
