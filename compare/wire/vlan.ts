/**
 * An 802.1Q (TPID 0x8100) or 802.1ad (0x88a8, and the pre-standard 0x9100) tag. The view covers the
 * 4 bytes after the TPID: tag control (PCP, DEI, VID) and the inner EtherType.
 */
import { put16, u16 } from './bytes.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = { TCI: 0, ETHERTYPE: 2, PAYLOAD: 4 } as const;

export const VLAN_TAG_LENGTH = F.PAYLOAD;

export function isVlanTpid(etherType: number): boolean {
  return etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100;
}

export class VlanView extends WireView {
  checkLength(): MalformedReason | null {
    return this.length < F.PAYLOAD ? 'truncated-vlan' : null;
  }

  get priority(): number {
    return this.buf[this.offset + F.TCI] >>> 5;
  }
  get dropEligible(): boolean {
    return (this.buf[this.offset + F.TCI] & 0x10) !== 0;
  }
  get vlanId(): number {
    return u16(this.buf, this.offset + F.TCI) & 0x0fff;
  }
  get etherType(): number {
    return u16(this.buf, this.offset + F.ETHERTYPE);
  }
  get payloadOffset(): number {
    return this.offset + F.PAYLOAD;
  }
}

export interface VlanRepr {
  priority: number;
  dropEligible: boolean;
  vlanId: number;
  /** The EtherType that follows the tag. */
  etherType: number;
}

export function parseVlan(view: VlanView): VlanRepr {
  return { priority: view.priority, dropEligible: view.dropEligible, vlanId: view.vlanId, etherType: view.etherType };
}

/** Writes the 4 bytes after the TPID (the TPID itself is the previous header's EtherType); returns 4. */
export function emitVlan(repr: VlanRepr, buf: Buffer, offset: number): number {
  put16(buf, offset + F.TCI, ((repr.priority & 7) << 13) | (repr.dropEligible ? 0x1000 : 0) | (repr.vlanId & 0x0fff));
  put16(buf, offset + F.ETHERTYPE, repr.etherType);
  return F.PAYLOAD;
}
