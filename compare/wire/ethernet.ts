/** Ethernet II header: destination and source MAC, EtherType. Frames arrive without the FCS. */
import { formatMac, writeMac } from './address.js';
import { put16, u16 } from './bytes.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = { DST: 0, SRC: 6, ETHERTYPE: 12, PAYLOAD: 14 } as const;

export const ETHERNET_HEADER_LENGTH = F.PAYLOAD;
/** Below this an Ethernet frame (without FCS) is padded on the wire; the padding is not payload. */
export const ETHERNET_MIN_FRAME_LENGTH = 60;

export class EthernetView extends WireView {
  checkLength(): MalformedReason | null {
    if (this.length <= 0) return 'empty';
    if (this.length < F.PAYLOAD) return 'truncated-ethernet';
    return null;
  }

  get dstOffset(): number {
    return this.offset + F.DST;
  }
  get srcOffset(): number {
    return this.offset + F.SRC;
  }
  get etherType(): number {
    return u16(this.buf, this.offset + F.ETHERTYPE);
  }
  get payloadOffset(): number {
    return this.offset + F.PAYLOAD;
  }
}

export interface EthernetRepr {
  dst: string;
  src: string;
  etherType: number;
}

export function parseEthernet(view: EthernetView): EthernetRepr {
  return {
    dst: formatMac(view.buf, view.dstOffset),
    src: formatMac(view.buf, view.srcOffset),
    etherType: view.etherType,
  };
}

/** Writes the 14-byte header; returns its length. */
export function emitEthernet(repr: EthernetRepr, buf: Buffer, offset: number): number {
  writeMac(repr.dst, buf, offset + F.DST);
  writeMac(repr.src, buf, offset + F.SRC);
  put16(buf, offset + F.ETHERTYPE, repr.etherType);
  return F.PAYLOAD;
}
