/**
 * ICMP for IPv4 (RFC 792). Every message starts with type, code, checksum and 4 bytes whose meaning
 * depends on the type (identifier and sequence for echo); the view covers those 8 bytes and the body.
 */
import { put16, u16 } from './bytes.js';
import { internetChecksum } from './checksum.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = { TYPE: 0, CODE: 1, CHECKSUM: 2, IDENT: 4, SEQUENCE: 6, BODY: 8 } as const;

export const ICMP_HEADER_LENGTH = F.BODY;
export const IcmpType = { ECHO_REPLY: 0, DEST_UNREACHABLE: 3, ECHO_REQUEST: 8, TIME_EXCEEDED: 11 } as const;

export function isIcmpEcho(type: number): boolean {
  return type === IcmpType.ECHO_REQUEST || type === IcmpType.ECHO_REPLY;
}

export class IcmpView extends WireView {
  checkLength(): MalformedReason | null {
    return this.length < F.BODY ? 'truncated-icmp' : null;
  }

  get type(): number {
    return this.buf[this.offset + F.TYPE];
  }
  get code(): number {
    return this.buf[this.offset + F.CODE];
  }
  get checksum(): number {
    return u16(this.buf, this.offset + F.CHECKSUM);
  }
  /** Echo identifier (the first half of the type-specific word for other types). */
  get ident(): number {
    return u16(this.buf, this.offset + F.IDENT);
  }
  get sequence(): number {
    return u16(this.buf, this.offset + F.SEQUENCE);
  }
  get bodyOffset(): number {
    return this.offset + F.BODY;
  }
}

export interface IcmpRepr {
  type: number;
  code: number;
  /** Echo identifier and sequence; for other types the two halves of the type-specific word. */
  ident: number;
  sequence: number;
  body: Buffer;
  /** Parsed only; emit computes it for ICMPv4 and writes 0 for ICMPv6 (the builder adds the pseudo-header). */
  checksum?: number;
}

export function parseIcmp(view: IcmpView): IcmpRepr {
  return {
    type: view.type,
    code: view.code,
    ident: view.ident,
    sequence: view.sequence,
    body: Buffer.from(view.buf.subarray(view.bodyOffset, view.offset + view.length)),
    checksum: view.checksum,
  };
}

/** Writes the message with a zero checksum (see checksum.ts to fill it); returns its length. */
export function emitIcmpMessage(repr: IcmpRepr, buf: Buffer, offset: number): number {
  buf[offset + F.TYPE] = repr.type;
  buf[offset + F.CODE] = repr.code;
  put16(buf, offset + F.CHECKSUM, 0);
  put16(buf, offset + F.IDENT, repr.ident);
  put16(buf, offset + F.SEQUENCE, repr.sequence);
  repr.body.copy(buf, offset + F.BODY);
  return F.BODY + repr.body.length;
}

/** Writes an ICMPv4 message with its checksum (ICMPv4 has no pseudo-header); returns its length. */
export function emitIcmp(repr: IcmpRepr, buf: Buffer, offset: number): number {
  const length = emitIcmpMessage(repr, buf, offset);
  put16(buf, offset + F.CHECKSUM, internetChecksum(buf, offset, offset + length));
  return length;
}
