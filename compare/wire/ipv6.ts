/**
 * IPv6 fixed header (RFC 8200) and the extension-header walk to the upper-layer header: hop-by-hop,
 * routing, destination options, mobility, HIP and shim6 share the (next header, length in 8-byte units
 * minus one) layout; the fragment header is 8 bytes; AH (RFC 4302) counts its length in 4-byte units
 * minus two. The walk is shared with IPv4, which may carry AH only.
 */
import { formatIpv6, writeIpv6 } from './address.js';
import { put16, put32, u16, u32 } from './bytes.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = { VER_TC_FLOW: 0, PAYLOAD_LENGTH: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SRC: 8, DST: 24, PAYLOAD: 40 } as const;
/** Fragment header fields, relative to the extension header's start. */
const FRAG = { NEXT_HEADER: 0, OFFSET_FLAGS: 2, IDENT: 4, LENGTH: 8 } as const;
/** AH fields. */
const AH = { NEXT_HEADER: 0, LENGTH: 1, SPI: 4, SEQUENCE: 8, ICV: 12 } as const;

export const IPV6_HEADER_LENGTH = F.PAYLOAD;

export const Ipv6Extension = {
  HOP_BY_HOP: 0,
  ROUTING: 43,
  FRAGMENT: 44,
  AH: 51,
  NO_NEXT_HEADER: 59,
  DESTINATION_OPTIONS: 60,
  MOBILITY: 135,
  HIP: 139,
  SHIM6: 140,
} as const;

export class Ipv6View extends WireView {
  /** After this passes, the fixed header and the payload length lie within the available bytes. */
  checkLength(): MalformedReason | null {
    if (this.length < F.PAYLOAD) return 'truncated-ipv6';
    if (this.version !== 6) return 'bad-ip-version';
    if (F.PAYLOAD + this.payloadLength > this.length) return 'ipv6-payload-length';
    return null;
  }

  get version(): number {
    return this.buf[this.offset + F.VER_TC_FLOW] >>> 4;
  }
  get trafficClass(): number {
    return (u16(this.buf, this.offset + F.VER_TC_FLOW) >>> 4) & 0xff;
  }
  get flowLabel(): number {
    return u32(this.buf, this.offset + F.VER_TC_FLOW) & 0xfffff;
  }
  get payloadLength(): number {
    return u16(this.buf, this.offset + F.PAYLOAD_LENGTH);
  }
  get nextHeader(): number {
    return this.buf[this.offset + F.NEXT_HEADER];
  }
  get hopLimit(): number {
    return this.buf[this.offset + F.HOP_LIMIT];
  }
  get srcOffset(): number {
    return this.offset + F.SRC;
  }
  get dstOffset(): number {
    return this.offset + F.DST;
  }
  get payloadOffset(): number {
    return this.offset + F.PAYLOAD;
  }
}

/**
 * Walks extension headers from `offset` (whose type is `nextHeader`) up to `end`. One instance is reused
 * per dissector: the result is left in its fields, so the walk allocates nothing.
 */
export class ExtensionWalk {
  /** The upper-layer protocol (or 59, or the header after a non-first fragment). */
  protocol = 0;
  /** Where the upper-layer header starts. */
  offset = 0;
  isFragment = false;
  moreFragments = false;

  /** `ahOnly` for IPv4, where AH is the only header of this family. */
  walk(buf: Buffer, offset: number, end: number, nextHeader: number, ahOnly: boolean): MalformedReason | null {
    this.isFragment = false;
    this.moreFragments = false;
    let next = nextHeader;
    let at = offset;
    while (true) {
      if (next === Ipv6Extension.AH) {
        if (end - at < AH.ICV) return 'truncated-ipv6-extension';
        const length = (buf[at + AH.LENGTH] + 2) * 4;
        if (end - at < length) return 'truncated-ipv6-extension';
        next = buf[at + AH.NEXT_HEADER];
        at += length;
        continue;
      }
      if (ahOnly) break;
      if (next === Ipv6Extension.FRAGMENT) {
        if (end - at < FRAG.LENGTH) return 'truncated-ipv6-extension';
        const offsetFlags = u16(buf, at + FRAG.OFFSET_FLAGS);
        next = buf[at + FRAG.NEXT_HEADER];
        at += FRAG.LENGTH;
        if ((offsetFlags & 1) !== 0) this.moreFragments = true;
        if (offsetFlags >>> 3 !== 0) {
          // A later fragment: what follows is the middle of the fragmentable part, not a header.
          this.isFragment = true;
          break;
        }
        continue;
      }
      if (isGenericExtension(next)) {
        if (end - at < 8) return 'truncated-ipv6-extension';
        const length = (buf[at + 1] + 1) * 8;
        if (end - at < length) return 'truncated-ipv6-extension';
        next = buf[at];
        at += length;
        continue;
      }
      break;
    }
    this.protocol = next;
    this.offset = at;
    return null;
  }
}

function isGenericExtension(type: number): boolean {
  return (
    type === Ipv6Extension.HOP_BY_HOP ||
    type === Ipv6Extension.ROUTING ||
    type === Ipv6Extension.DESTINATION_OPTIONS ||
    type === Ipv6Extension.MOBILITY ||
    type === Ipv6Extension.HIP ||
    type === Ipv6Extension.SHIM6
  );
}

/** One extension header. `data` of generic headers is what follows the 2-byte (next, length) prefix. */
export type Ipv6ExtensionRepr =
  | { type: 0 | 43 | 60 | 135 | 139 | 140; data: Buffer }
  | { type: 44; fragmentOffset: number; moreFragments: boolean; ident: number }
  | { type: 51; spi: number; sequence: number; icv: Buffer };

export interface Ipv6Repr {
  src: string;
  dst: string;
  /** The first next-header value (the first extension header's type when there are extensions). */
  nextHeader: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
}

export function parseIpv6(view: Ipv6View): Ipv6Repr {
  return {
    src: formatIpv6(view.buf, view.srcOffset),
    dst: formatIpv6(view.buf, view.dstOffset),
    nextHeader: view.nextHeader,
    hopLimit: view.hopLimit,
    trafficClass: view.trafficClass,
    flowLabel: view.flowLabel,
    payloadLength: view.payloadLength,
  };
}

/** Writes the 40-byte fixed header; returns 40. */
export function emitIpv6(repr: Ipv6Repr, buf: Buffer, offset: number): number {
  put32(
    buf,
    offset + F.VER_TC_FLOW,
    ((6 << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & 0xfffff)) >>> 0,
  );
  put16(buf, offset + F.PAYLOAD_LENGTH, repr.payloadLength);
  buf[offset + F.NEXT_HEADER] = repr.nextHeader;
  buf[offset + F.HOP_LIMIT] = repr.hopLimit;
  writeIpv6(repr.src, buf, offset + F.SRC);
  writeIpv6(repr.dst, buf, offset + F.DST);
  return F.PAYLOAD;
}

/** The encoded length of one extension header (generic data is zero-padded to a multiple of 8). */
export function ipv6ExtensionLength(ext: Ipv6ExtensionRepr): number {
  if (ext.type === Ipv6Extension.FRAGMENT) return FRAG.LENGTH;
  if (ext.type === Ipv6Extension.AH) return AH.ICV + Math.ceil(ext.icv.length / 4) * 4;
  return Math.ceil((2 + ext.data.length) / 8) * 8;
}

/** Writes a chain of extension headers, the last pointing at `upperProtocol`; returns the bytes written. */
export function emitIpv6Extensions(
  exts: readonly Ipv6ExtensionRepr[],
  upperProtocol: number,
  buf: Buffer,
  offset: number,
): number {
  let at = offset;
  exts.forEach((ext, index) => {
    const next = index + 1 < exts.length ? exts[index + 1].type : upperProtocol;
    const length = ipv6ExtensionLength(ext);
    buf.fill(0, at, at + length);
    buf[at] = next;
    if (ext.type === Ipv6Extension.FRAGMENT) {
      put16(buf, at + FRAG.OFFSET_FLAGS, ((ext.fragmentOffset & 0x1fff) << 3) | (ext.moreFragments ? 1 : 0));
      put32(buf, at + FRAG.IDENT, ext.ident >>> 0);
    } else if (ext.type === Ipv6Extension.AH) {
      buf[at + AH.LENGTH] = length / 4 - 2;
      put32(buf, at + AH.SPI, ext.spi >>> 0);
      put32(buf, at + AH.SEQUENCE, ext.sequence >>> 0);
      ext.icv.copy(buf, at + AH.ICV);
    } else {
      buf[at + 1] = length / 8 - 1;
      ext.data.copy(buf, at + 2);
    }
    at += length;
  });
  return at - offset;
}
