/** UDP header (RFC 768). The length field bounds the datagram; bytes after it in the IP payload are not data. */
import { put16, u16 } from './bytes.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6, PAYLOAD: 8 } as const;

export const UDP_HEADER_LENGTH = F.PAYLOAD;
export const UDP_CHECKSUM_FIELD = F.CHECKSUM;

export class UdpView extends WireView {
  /** After this passes, the UDP length lies within [8, available]. */
  checkLength(): MalformedReason | null {
    if (this.length < F.PAYLOAD) return 'truncated-udp';
    const length = this.datagramLength;
    if (length < F.PAYLOAD || length > this.length) return 'bad-udp-length';
    return null;
  }

  get srcPort(): number {
    return u16(this.buf, this.offset + F.SRC_PORT);
  }
  get dstPort(): number {
    return u16(this.buf, this.offset + F.DST_PORT);
  }
  /** The UDP length field: header plus data. */
  get datagramLength(): number {
    return u16(this.buf, this.offset + F.LENGTH);
  }
  get checksum(): number {
    return u16(this.buf, this.offset + F.CHECKSUM);
  }
  get payloadOffset(): number {
    return this.offset + F.PAYLOAD;
  }
}

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  /** Parsed only; emit writes 0 and the builder fills it in with the pseudo-header. */
  checksum?: number;
}

export function parseUdp(view: UdpView): UdpRepr {
  return {
    srcPort: view.srcPort,
    dstPort: view.dstPort,
    payload: Buffer.from(view.buf.subarray(view.payloadOffset, view.offset + view.datagramLength)),
    checksum: view.checksum,
  };
}

/** Writes header and payload with a zero checksum; returns the datagram length. */
export function emitUdp(repr: UdpRepr, buf: Buffer, offset: number): number {
  const length = F.PAYLOAD + repr.payload.length;
  put16(buf, offset + F.SRC_PORT, repr.srcPort);
  put16(buf, offset + F.DST_PORT, repr.dstPort);
  put16(buf, offset + F.LENGTH, length);
  put16(buf, offset + F.CHECKSUM, 0);
  repr.payload.copy(buf, offset + F.PAYLOAD);
  return length;
}
