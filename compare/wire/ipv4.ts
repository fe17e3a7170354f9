/** IPv4 header (RFC 791) with options: IHL gives the header length, total length the datagram's end. */
import { formatIpv4, writeIpv4 } from './address.js';
import { put16, u16 } from './bytes.js';
import { internetChecksum } from './checksum.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = {
  VER_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LENGTH: 2,
  IDENT: 4,
  FLAGS_FRAGMENT: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
  OPTIONS: 20,
} as const;

export const IPV4_MIN_HEADER_LENGTH = F.OPTIONS;
const DONT_FRAGMENT = 0x4000;
const MORE_FRAGMENTS = 0x2000;

export class Ipv4View extends WireView {
  /** After this passes, headerLength and totalLength lie within the available bytes. */
  checkLength(): MalformedReason | null {
    if (this.length < F.OPTIONS) return 'truncated-ipv4';
    if (this.version !== 4) return 'bad-ip-version';
    const headerLength = this.headerLength;
    if (headerLength < F.OPTIONS) return 'bad-ipv4-ihl';
    if (headerLength > this.length) return 'truncated-ipv4';
    const total = this.totalLength;
    if (total < headerLength || total > this.length) return 'ipv4-total-length';
    return null;
  }

  get version(): number {
    return this.buf[this.offset + F.VER_IHL] >>> 4;
  }
  get headerLength(): number {
    return (this.buf[this.offset + F.VER_IHL] & 0x0f) * 4;
  }
  get dscp(): number {
    return this.buf[this.offset + F.DSCP_ECN] >>> 2;
  }
  get ecn(): number {
    return this.buf[this.offset + F.DSCP_ECN] & 3;
  }
  get totalLength(): number {
    return u16(this.buf, this.offset + F.TOTAL_LENGTH);
  }
  get ident(): number {
    return u16(this.buf, this.offset + F.IDENT);
  }
  get dontFragment(): boolean {
    return (u16(this.buf, this.offset + F.FLAGS_FRAGMENT) & DONT_FRAGMENT) !== 0;
  }
  get moreFragments(): boolean {
    return (u16(this.buf, this.offset + F.FLAGS_FRAGMENT) & MORE_FRAGMENTS) !== 0;
  }
  /** In 8-byte units, as on the wire. */
  get fragmentOffset(): number {
    return u16(this.buf, this.offset + F.FLAGS_FRAGMENT) & 0x1fff;
  }
  get ttl(): number {
    return this.buf[this.offset + F.TTL];
  }
  get protocol(): number {
    return this.buf[this.offset + F.PROTOCOL];
  }
  get checksum(): number {
    return u16(this.buf, this.offset + F.CHECKSUM);
  }
  get srcOffset(): number {
    return this.offset + F.SRC;
  }
  get dstOffset(): number {
    return this.offset + F.DST;
  }
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  /** True when the header checksum verifies. Not checked by dissect: offload may leave it unset. */
  get checksumOk(): boolean {
    return internetChecksum(this.buf, this.offset, this.offset + this.headerLength) === 0;
  }
}

export interface Ipv4Repr {
  src: string;
  dst: string;
  protocol: number;
  ttl: number;
  ident: number;
  dscp: number;
  ecn: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In 8-byte units. */
  fragmentOffset: number;
  /** Raw option bytes; emit pads them with zeros (end of options) to a multiple of 4. */
  options: Buffer;
  payloadLength: number;
  /** Parsed only; emit always computes it. */
  checksum?: number;
}

export function parseIpv4(view: Ipv4View): Ipv4Repr {
  const { buf, offset } = view;
  return {
    src: formatIpv4(buf, view.srcOffset),
    dst: formatIpv4(buf, view.dstOffset),
    protocol: view.protocol,
    ttl: view.ttl,
    ident: view.ident,
    dscp: view.dscp,
    ecn: view.ecn,
    dontFragment: view.dontFragment,
    moreFragments: view.moreFragments,
    fragmentOffset: view.fragmentOffset,
    options: Buffer.from(buf.subarray(offset + F.OPTIONS, offset + view.headerLength)),
    payloadLength: view.totalLength - view.headerLength,
    checksum: view.checksum,
  };
}

export function ipv4HeaderLength(repr: Pick<Ipv4Repr, 'options'>): number {
  return F.OPTIONS + Math.ceil(repr.options.length / 4) * 4;
}

/** Writes the header with options and a correct header checksum; returns the header length. */
export function emitIpv4(repr: Ipv4Repr, buf: Buffer, offset: number): number {
  const headerLength = ipv4HeaderLength(repr);
  if (headerLength > 60) throw new Error(`IPv4 options too long: ${repr.options.length} bytes (max 40)`);
  buf[offset + F.VER_IHL] = 0x40 | (headerLength / 4);
  buf[offset + F.DSCP_ECN] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 3);
  put16(buf, offset + F.TOTAL_LENGTH, headerLength + repr.payloadLength);
  put16(buf, offset + F.IDENT, repr.ident);
  put16(
    buf,
    offset + F.FLAGS_FRAGMENT,
    (repr.dontFragment ? DONT_FRAGMENT : 0) |
      (repr.moreFragments ? MORE_FRAGMENTS : 0) |
      (repr.fragmentOffset & 0x1fff),
  );
  buf[offset + F.TTL] = repr.ttl;
  buf[offset + F.PROTOCOL] = repr.protocol;
  put16(buf, offset + F.CHECKSUM, 0);
  writeIpv4(repr.src, buf, offset + F.SRC);
  writeIpv4(repr.dst, buf, offset + F.DST);
  buf.fill(0, offset + F.OPTIONS, offset + headerLength);
  repr.options.copy(buf, offset + F.OPTIONS);
  put16(buf, offset + F.CHECKSUM, internetChecksum(buf, offset, offset + headerLength));
  return headerLength;
}
