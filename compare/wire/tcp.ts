/** TCP header (RFC 9293) with options. Sequence arithmetic lives in compare/seq.ts. */
import { put16, put32, u16, u32 } from './bytes.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  OPTIONS: 20,
} as const;

export const TCP_MIN_HEADER_LENGTH = F.OPTIONS;
export const TCP_CHECKSUM_FIELD = F.CHECKSUM;

export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

export class TcpView extends WireView {
  /** After this passes, the header and its options lie within the segment. */
  checkLength(): MalformedReason | null {
    if (this.length < F.OPTIONS) return 'truncated-tcp';
    const headerLength = this.headerLength;
    if (headerLength < F.OPTIONS || headerLength > this.length) return 'bad-tcp-data-offset';
    return null;
  }

  get srcPort(): number {
    return u16(this.buf, this.offset + F.SRC_PORT);
  }
  get dstPort(): number {
    return u16(this.buf, this.offset + F.DST_PORT);
  }
  get seq(): number {
    return u32(this.buf, this.offset + F.SEQ);
  }
  get ack(): number {
    return u32(this.buf, this.offset + F.ACK);
  }
  get headerLength(): number {
    return (this.buf[this.offset + F.DATA_OFFSET] >>> 4) * 4;
  }
  /** The 8 classic flag bits (TcpFlag); the NS/AE bit is left out. */
  get flags(): number {
    return this.buf[this.offset + F.FLAGS];
  }
  get window(): number {
    return u16(this.buf, this.offset + F.WINDOW);
  }
  get checksum(): number {
    return u16(this.buf, this.offset + F.CHECKSUM);
  }
  get urgent(): number {
    return u16(this.buf, this.offset + F.URGENT);
  }
  get optionsOffset(): number {
    return this.offset + F.OPTIONS;
  }
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
}

export type TcpOptionRepr =
  | { kind: 2; mss: number }
  | { kind: 3; shift: number }
  | { kind: 4 }
  | { kind: 5; blocks: Array<[number, number]> }
  | { kind: 8; value: number; echo: number }
  | { kind: number; data: Buffer; malformed?: true };

/**
 * Decodes the option bytes. END stops the list; NOP is skipped; an option whose length is impossible or
 * runs past the header ends the list with an entry marked malformed carrying the remaining bytes.
 */
export function parseTcpOptions(buf: Buffer, start: number, end: number): TcpOptionRepr[] {
  const out: TcpOptionRepr[] = [];
  let at = start;
  while (at < end) {
    const kind = buf[at];
    if (kind === TcpOptionKind.END) break;
    if (kind === TcpOptionKind.NOP) {
      at += 1;
      continue;
    }
    const length = at + 1 < end ? buf[at + 1] : 0;
    if (length < 2 || at + length > end) {
      out.push({ kind, data: Buffer.from(buf.subarray(at, end)), malformed: true });
      break;
    }
    const body = at + 2;
    if (kind === TcpOptionKind.MSS && length === 4) out.push({ kind, mss: u16(buf, body) });
    else if (kind === TcpOptionKind.WINDOW_SCALE && length === 3) out.push({ kind, shift: buf[body] });
    else if (kind === TcpOptionKind.SACK_PERMITTED && length === 2) out.push({ kind });
    else if (kind === TcpOptionKind.TIMESTAMPS && length === 10)
      out.push({ kind, value: u32(buf, body), echo: u32(buf, body + 4) });
    else if (kind === TcpOptionKind.SACK && (length - 2) % 8 === 0) {
      const blocks: Array<[number, number]> = [];
      for (let b = body; b < at + length; b += 8) blocks.push([u32(buf, b), u32(buf, b + 4)]);
      out.push({ kind, blocks });
    } else out.push({ kind, data: Buffer.from(buf.subarray(body, at + length)) });
    at += length;
  }
  return out;
}

/** Encodes options (no padding; emitTcp pads to a multiple of 4 with END). */
export function encodeTcpOptions(options: readonly TcpOptionRepr[]): Buffer {
  const parts: Buffer[] = [];
  for (const option of options) {
    let part: Buffer;
    if ('mss' in option) {
      part = Buffer.from([option.kind, 4, 0, 0]);
      put16(part, 2, option.mss);
    } else if ('shift' in option) part = Buffer.from([option.kind, 3, option.shift]);
    else if ('blocks' in option) {
      part = Buffer.alloc(2 + 8 * option.blocks.length);
      part[0] = option.kind;
      part[1] = part.length;
      option.blocks.forEach(([left, right], i) => {
        put32(part, 2 + 8 * i, left >>> 0);
        put32(part, 6 + 8 * i, right >>> 0);
      });
    } else if ('value' in option) {
      part = Buffer.from([option.kind, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
      put32(part, 2, option.value >>> 0);
      put32(part, 6, option.echo >>> 0);
    } else if ('data' in option)
      part = Buffer.concat([Buffer.from([option.kind, 2 + option.data.length]), option.data]);
    else part = Buffer.from([option.kind, 2]);
    parts.push(part);
  }
  return Buffer.concat(parts);
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgent: number;
  /** Raw option bytes, padded by emit with zeros (END) to a multiple of 4. */
  options: Buffer;
  payload: Buffer;
  /** Parsed only; emit writes 0 and the builder fills it in with the pseudo-header. */
  checksum?: number;
}

export function parseTcp(view: TcpView): TcpRepr {
  const { buf } = view;
  return {
    srcPort: view.srcPort,
    dstPort: view.dstPort,
    seq: view.seq,
    ack: view.ack,
    flags: view.flags,
    window: view.window,
    urgent: view.urgent,
    options: Buffer.from(buf.subarray(view.optionsOffset, view.payloadOffset)),
    payload: Buffer.from(buf.subarray(view.payloadOffset, view.offset + view.length)),
    checksum: view.checksum,
  };
}

export function tcpHeaderLength(repr: Pick<TcpRepr, 'options'>): number {
  return F.OPTIONS + Math.ceil(repr.options.length / 4) * 4;
}

/** Writes header, options and payload with a zero checksum; returns the segment length. */
export function emitTcp(repr: TcpRepr, buf: Buffer, offset: number): number {
  const headerLength = tcpHeaderLength(repr);
  if (headerLength > 60) throw new Error(`TCP options too long: ${repr.options.length} bytes (max 40)`);
  put16(buf, offset + F.SRC_PORT, repr.srcPort);
  put16(buf, offset + F.DST_PORT, repr.dstPort);
  put32(buf, offset + F.SEQ, repr.seq >>> 0);
  put32(buf, offset + F.ACK, repr.ack >>> 0);
  buf[offset + F.DATA_OFFSET] = (headerLength / 4) << 4;
  buf[offset + F.FLAGS] = repr.flags & 0xff;
  put16(buf, offset + F.WINDOW, repr.window);
  put16(buf, offset + F.CHECKSUM, 0);
  put16(buf, offset + F.URGENT, repr.urgent);
  buf.fill(0, offset + F.OPTIONS, offset + headerLength);
  repr.options.copy(buf, offset + F.OPTIONS);
  repr.payload.copy(buf, offset + headerLength);
  return headerLength + repr.payload.length;
}
