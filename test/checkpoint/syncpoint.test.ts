import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ControlChannel } from '../../src/checkpoint/channel.js';
import { StateTooLargeError } from '../../src/checkpoint/errors.js';
import { memoryPair } from '../../src/checkpoint/transport.js';
import {
  SyncPoint,
  SyncPointDecoder,
  describeSyncPoint,
  encodeSendHeader,
  encodeWithArgument,
  encoded,
  type DecoderSink,
} from '../../src/checkpoint/syncpoint.js';

type Event = { sync: number } | { arg: [number, number] } | { begin: number } | { state: string };

function collect(maxStateBytes = 1 << 20): { decoder: SyncPointDecoder; events: Event[]; states: Buffer[] } {
  const events: Event[] = [];
  const states: Buffer[] = [];
  const sink: DecoderSink = {
    syncPoint: (value) => events.push({ sync: value }),
    withArgument: (value, arg) => events.push({ arg: [value, arg] }),
    stateBegin: (length) => events.push({ begin: length }),
    state: (state) => {
      states.push(state);
      events.push({ state: state.toString('hex') });
    },
  };
  return { decoder: new SyncPointDecoder(sink, maxStateBytes), events, states };
}

describe('sync point codec', () => {
  it('emits the seed values as 8-byte big-endian words', () => {
    expect(encoded.READY.toString('hex')).toBe('0000000000000046');
    expect(encoded.NEW.toString('hex')).toBe('0000000000000047');
    expect(encoded.SUSPENDED.toString('hex')).toBe('0000000000000048');
    expect(encoded.SEND.toString('hex')).toBe('0000000000000049');
    expect(encoded.RECEIVED.toString('hex')).toBe('000000000000004a');
    expect(encoded.LOADED.toString('hex')).toBe('000000000000004b');
  });

  it('emits the extensions at 0x100 and above, HELLO and ERROR with a u64 argument', () => {
    expect(encoded.HEARTBEAT.toString('hex')).toBe('0000000000000101');
    expect(encoded.ABORT.toString('hex')).toBe('0000000000000103');
    expect(encodeWithArgument(SyncPoint.HELLO, 1).toString('hex')).toBe('0000000000000100' + '0000000000000001');
    expect(encodeWithArgument(SyncPoint.ERROR, 5).toString('hex')).toBe('0000000000000102' + '0000000000000005');
  });

  it('emits SEND with a u64 length, including lengths above 4 GiB', () => {
    expect(encodeSendHeader(3).toString('hex')).toBe('0000000000000049' + '0000000000000003');
    expect(encodeSendHeader(2 ** 32 + 5).toString('hex')).toBe('0000000000000049' + '0000000100000005');
  });

  it('names a sync point by name and value', () => {
    expect(describeSyncPoint(0x48)).toBe('SUSPENDED (0x48)');
    expect(describeSyncPoint(0x999)).toBe('unknown (0x999)');
  });

  it('parses a transaction split at every byte boundary into the same messages', () => {
    const wire = Buffer.concat([
      encoded.NEW,
      encodeWithArgument(SyncPoint.HELLO, 7),
      encodeSendHeader(5),
      Buffer.from('abcde'),
      encoded.LOADED,
      encodeSendHeader(0),
      encoded.READY,
    ]);
    const expected: Event[] = [
      { sync: 0x47 },
      { arg: [0x100, 7] },
      { begin: 5 },
      { state: Buffer.from('abcde').toString('hex') },
      { sync: 0x4b },
      { begin: 0 },
      { state: '' },
      { sync: 0x46 },
    ];
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 12 }), (cuts) => {
        const { decoder, events } = collect();
        let from = 0;
        for (const cut of [...cuts.sort((a, b) => a - b), wire.length]) {
          expect(decoder.push(wire.subarray(from, cut))).toBeNull();
          from = cut;
        }
        expect(events).toEqual(expected);
      }),
    );
  });

  it('hands out a view, not a copy, when one chunk holds the whole state', () => {
    const state = Buffer.from('0123456789');
    const chunk = Buffer.concat([encodeSendHeader(state.length), state, encoded.RECEIVED]);
    const { decoder, states, events } = collect();
    decoder.push(chunk);
    expect(states[0].buffer).toBe(chunk.buffer);
    expect(states[0].toString()).toBe('0123456789');
    expect(events.at(-1)).toEqual({ sync: 0x4a });
  });

  it('refuses a length above the maximum before allocating', () => {
    const { decoder, events } = collect(1000);
    const failure = decoder.push(encodeSendHeader(1001));
    expect(failure).toEqual({ reason: 'state-too-large', length: 1001, max: 1000 });
    expect(events).toEqual([]);
    expect(decoder.push(encoded.READY)).toEqual(failure);
    expect(events).toEqual([]);
  });

  it('keeps a refused length beyond 2^53 exact, so a 2^63 + 1 length is named as sent', async () => {
    const { decoder } = collect(1000);
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(0x49n, 0);
    header.writeBigUInt64BE(2n ** 63n + 1n, 8);
    const failure = decoder.push(header);
    expect(failure).toEqual({ reason: 'state-too-large', length: 2n ** 63n + 1n, max: 1000 });
    const exactly = collect(1000).decoder.push(Buffer.from('00000000000000498000000000000000', 'hex'));
    expect(exactly).toEqual({ reason: 'state-too-large', length: 9223372036854775808n, max: 1000 });
    // Through a channel, as the agent and the coordinator see it.
    const [near, far] = memoryPair();
    const channel = new ControlChannel(near, {
      maxStateBytes: 1000,
      heartbeatIntervalMs: 60_000,
      heartbeatLossMs: 120_000,
      now: () => performance.now(),
    });
    const failed = new Promise<Error>((resolve) => channel.onFailure(resolve));
    far.write(header);
    const error = await failed;
    expect(error).toBeInstanceOf(StateTooLargeError);
    expect(error.message).toBe('state of 9223372036854775809 bytes refused: the maximum is 1000');
    far.destroy();
  });

  it('refuses a word that is no sync point, naming its value', () => {
    const { decoder, events } = collect();
    expect(decoder.push(Buffer.from('deadbeef00000001', 'hex'))).toEqual({
      reason: 'unknown-value',
      hex: '0xdeadbeef00000001',
    });
    const second = collect();
    expect(second.decoder.push(Buffer.from('0000000000000045', 'hex'))).toEqual({
      reason: 'unknown-value',
      hex: '0x45',
    });
    expect(events).toEqual([]);
  });

  it('decodes any sequence of valid messages, whatever the chunking (property)', () => {
    const message = fc.oneof(
      fc.constantFrom(0x46, 0x47, 0x48, 0x4a, 0x4b, 0x101, 0x103).map((v) => ({ wire: Buffer.alloc(0), v })),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ wire: Buffer.from(bytes), v: -1 })),
    );
    fc.assert(
      fc.property(fc.array(message, { maxLength: 10 }), fc.integer({ min: 1, max: 17 }), (messages, step) => {
        const parts: Buffer[] = [];
        const expected: Event[] = [];
        for (const m of messages) {
          if (m.v >= 0) {
            const word = Buffer.alloc(8);
            word.writeUInt32BE(m.v, 4);
            parts.push(word);
            expected.push({ sync: m.v });
          } else {
            parts.push(encodeSendHeader(m.wire.length), m.wire);
            expected.push({ begin: m.wire.length }, { state: m.wire.toString('hex') });
          }
        }
        const wire = Buffer.concat(parts);
        const { decoder, events } = collect();
        for (let i = 0; i < wire.length; i += step) expect(decoder.push(wire.subarray(i, i + step))).toBeNull();
        expect(events).toEqual(expected);
      }),
    );
  });
});

describe('state buffer reuse', () => {
  it('reuses one buffer across states, and never writes into a state that is still lent out', () => {
    const { decoder, states } = collect();
    decoder.reuseStateBuffer = true;
    const send = (text: string): void => {
      // Two chunks, so the state is gathered rather than viewed in place.
      const wire = Buffer.concat([encodeSendHeader(text.length), Buffer.from(text)]);
      decoder.push(wire.subarray(0, 20));
      decoder.push(wire.subarray(20));
    };
    // Above Node's 4 KiB pool threshold, so every allocation has an ArrayBuffer of its own.
    const first = '1'.repeat(9000);
    const second = '2'.repeat(8000);
    const third = '3'.repeat(8500);
    send(first);
    decoder.releaseState();
    send(second);
    expect(states[1].buffer).toBe(states[0].buffer);
    expect(states[1].toString()).toBe(second);
    // Not released: the next state must land elsewhere and leave the lent one intact.
    send(third);
    expect(states[2].buffer).not.toBe(states[1].buffer);
    expect(states[1].toString()).toBe(second);
    expect(states[2].toString()).toBe(third);
  });

  it('copies out of chunks the caller reuses instead of keeping a view', () => {
    const { decoder, states } = collect();
    decoder.chunksAreReused = true;
    const chunk = Buffer.concat([encodeSendHeader(4), Buffer.from('abcd')]);
    decoder.push(chunk);
    chunk.fill(0);
    expect(states[0].toString()).toBe('abcd');
  });
});
