import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../../../compare/wire/frame-info.js';
import {
  emitTcp,
  encodeTcpOptions,
  parseTcp,
  parseTcpOptions,
  TcpView,
  type TcpOptionRepr,
} from '../../../compare/wire/tcp.js';
import { hex, tcp4, tcp4Syn } from './fixtures.js';

const segment = (frame: Buffer): TcpView => new TcpView().reset(frame, 34, frame.length - 34);

describe('tcp', () => {
  it('deconstructs a segment', () => {
    const view = segment(tcp4);
    expect(view.checkLength()).toBeNull();
    expect(view.srcPort).toBe(40000);
    expect(view.dstPort).toBe(80);
    expect(view.seq).toBe(0x01020304);
    expect(view.ack).toBe(0xa0b0c0d0);
    expect(view.headerLength).toBe(20);
    expect(view.flags).toBe(TcpFlag.PSH | TcpFlag.ACK);
    expect(view.window).toBe(502);
    expect(view.checksum).toBe(0x5341);
    expect(view.payloadOffset).toBe(54);
  });

  it('parses options of a SYN', () => {
    const view = segment(tcp4Syn);
    expect(view.headerLength).toBe(40);
    const repr = parseTcp(view);
    expect(repr.flags).toBe(TcpFlag.SYN);
    expect(repr.payload.length).toBe(0);
    expect(parseTcpOptions(repr.options, 0, repr.options.length)).toEqual([
      { kind: 2, mss: 1460 },
      { kind: 4 },
      { kind: 8, value: 1, echo: 0 },
      { kind: 3, shift: 7 },
    ]);
  });

  it('encodes options to the fixture bytes', () => {
    const options: TcpOptionRepr[] = [
      { kind: 2, mss: 1460 },
      { kind: 4 },
      { kind: 8, value: 1, echo: 0 },
      { kind: 3, shift: 7 },
    ];
    expect(encodeTcpOptions(options).toString('hex')).toBe('020405b40402080a0000000100000000030307');
  });

  it('round-trips SACK blocks and unknown options', () => {
    const options: TcpOptionRepr[] = [
      {
        kind: 5,
        blocks: [
          [1, 2],
          [0xfffffff0, 0x10],
        ],
      },
      { kind: 30, data: hex('abcd') },
    ];
    const bytes = encodeTcpOptions(options);
    expect(parseTcpOptions(bytes, 0, bytes.length)).toEqual(options);
  });

  it('skips NOP, stops at END, and marks an impossible option length', () => {
    expect(parseTcpOptions(hex('0101 0204 05b4 00 ff'), 0, 8)).toEqual([{ kind: 2, mss: 1460 }]);
    expect(parseTcpOptions(hex('0201'), 0, 2)).toEqual([{ kind: 2, data: hex('0201'), malformed: true }]);
    expect(parseTcpOptions(hex('0208 0000'), 0, 4)).toEqual([{ kind: 2, data: hex('02080000'), malformed: true }]);
  });

  it('emits the fixture segment (checksum left to the builder)', () => {
    const repr = parseTcp(segment(tcp4));
    const out = Buffer.alloc(27);
    expect(emitTcp(repr, out, 0)).toBe(27);
    const expected = Buffer.from(tcp4.subarray(34));
    expected.writeUInt16BE(0, 16);
    expect(out).toEqual(expected);
  });

  it('reports a short segment and a bad data offset', () => {
    expect(new TcpView(tcp4, 34, 19).checkLength()).toBe('truncated-tcp');
    const bad = Buffer.from(tcp4.subarray(34));
    bad[12] = 0x40;
    expect(new TcpView(bad, 0, bad.length).checkLength()).toBe('bad-tcp-data-offset');
    bad[12] = 0x80; // 32 bytes of header in a 27-byte segment
    expect(new TcpView(bad, 0, bad.length).checkLength()).toBe('bad-tcp-data-offset');
    bad[12] = 0x60;
    expect(new TcpView(bad, 0, bad.length).checkLength()).toBeNull();
  });

  it('refuses options over 40 bytes', () => {
    const repr = { ...parseTcp(segment(tcp4)), options: Buffer.alloc(41) };
    expect(() => emitTcp(repr, Buffer.alloc(100), 0)).toThrow(/options too long/);
  });
});
