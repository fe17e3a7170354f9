import { describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import { copy, tcp, udp } from './support.js';

describe('CompareEngine.inspect', () => {
  it('returns the dissected headers of a well-formed frame', () => {
    const engine = new CompareEngine();
    const frame = tcp(100, 'hello');
    const info = engine.inspect(frame, 0);
    expect(info).not.toBeNull();
    expect(info!.buf).toBe(frame);
    expect(info!.tcpSeq).toBe(100);
    expect(info!.srcPort).toBe(80);
    expect(info!.dstPort).toBe(40000);
    expect(info!.payloadLength).toBe(5);
  });

  it('returns null for a malformed frame, and push still reports it with its reason', () => {
    const engine = new CompareEngine();
    const cut = tcp(100, 'hello').subarray(0, 14 + 20 + 8);
    expect(engine.inspect(cut, 0)).toBeNull();
    const outcome = copy(engine.push('primary', cut, 0, 0));
    expect(outcome.malformed.map((m) => m.reason)).toEqual(['ipv4-total-length']);
    expect(engine.stats().malformedPackets).toBe(1);
  });

  it('a push of a different frame than the one inspected dissects that frame, not the inspected one', () => {
    const engine = new CompareEngine();
    const cut = tcp(100, 'hello').subarray(0, 14 + 20 + 8);
    expect(engine.inspect(cut, 0)).toBeNull();
    // Had push() reused the inspected (malformed) result, this good frame would be reported malformed.
    const good = tcp(100, 'hello');
    const outcome = copy(engine.push('primary', good, 0, 0));
    expect(outcome.malformed).toEqual([]);
    expect(engine.stats().heldPrimaryPackets).toBe(1);
  });

  it('the same frame at another start offset is dissected again', () => {
    const engine = new CompareEngine();
    const inner = udp('abc');
    const framed = Buffer.concat([Buffer.alloc(10), inner]);
    // From offset 0 the vnet-like prefix makes nonsense; from 10 it is the UDP frame.
    engine.inspect(framed, 0);
    const outcome = copy(engine.push('secondary', framed, 10, 0));
    expect(outcome.malformed).toEqual([]);
    expect(engine.stats().heldSecondaryPackets).toBe(1);
  });

  it('inspect then push decides exactly as push alone, frame by frame', () => {
    const frames: ['primary' | 'secondary', Buffer][] = [
      ['primary', tcp(1, 'abcdef')],
      ['secondary', tcp(501, 'abc', { ack: 1000 })],
      ['secondary', tcp(504, 'deX', { ack: 1000 })],
      ['primary', udp('q1')],
      ['secondary', udp('q1')],
      ['primary', tcp(7, 'gh').subarray(0, 40)],
      ['secondary', udp('q2')],
      ['primary', udp('q3')],
    ];
    const plain = new CompareEngine();
    const inspected = new CompareEngine();
    frames.forEach(([side, frame], i) => {
      const expected = copy(plain.push(side, frame, 0, i, i));
      inspected.inspect(frame, 0);
      const actual = copy(inspected.push(side, frame, 0, i, i));
      expect(actual).toEqual(expected);
    });
    expect(inspected.stats()).toEqual(plain.stats());
    // Not vacuous: the TCP stream (byte 6) and the UDP pair q2/q3 both diverge, and one frame is malformed.
    expect(plain.stats().divergences).toEqual({ payload: 2 });
    expect(plain.stats().malformedPackets).toBe(1);
  });
});
