/**
 * ARP (RFC 826). The fixed part gives the hardware and protocol address lengths, which place the four
 * addresses; Ethernet/IPv4 ARP (6/4) is the case the repr decodes to text.
 */
import { formatIpv4, formatMac, writeIpv4, writeMac } from './address.js';
import { put16, u16 } from './bytes.js';
import type { MalformedReason } from './frame-info.js';
import { WireView } from './view.js';

const F = { HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6, SHA: 8 } as const;

export const ARP_ETHERNET_IPV4_LENGTH = F.SHA + 2 * (6 + 4);
export const ArpOperation = { REQUEST: 1, REPLY: 2 } as const;

export class ArpView extends WireView {
  /** After this passes, all four addresses lie within the available bytes. */
  checkLength(): MalformedReason | null {
    if (this.length < F.SHA) return 'truncated-arp';
    if (this.length < F.SHA + 2 * (this.hardwareLength + this.protocolLength)) return 'truncated-arp';
    return null;
  }

  get hardwareType(): number {
    return u16(this.buf, this.offset + F.HTYPE);
  }
  get protocolType(): number {
    return u16(this.buf, this.offset + F.PTYPE);
  }
  get hardwareLength(): number {
    return this.buf[this.offset + F.HLEN];
  }
  get protocolLength(): number {
    return this.buf[this.offset + F.PLEN];
  }
  get operation(): number {
    return u16(this.buf, this.offset + F.OPER);
  }
  get senderHardwareOffset(): number {
    return this.offset + F.SHA;
  }
  get senderProtocolOffset(): number {
    return this.offset + F.SHA + this.hardwareLength;
  }
  get targetHardwareOffset(): number {
    return this.senderProtocolOffset + this.protocolLength;
  }
  get targetProtocolOffset(): number {
    return this.targetHardwareOffset + this.hardwareLength;
  }
  /** Ethernet hardware and IPv4 protocol addresses: the only layout the repr decodes to text. */
  get isEthernetIpv4(): boolean {
    return (
      this.hardwareType === 1 && this.protocolType === 0x0800 && this.hardwareLength === 6 && this.protocolLength === 4
    );
  }
}

export interface ArpRepr {
  operation: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** Decodes Ethernet/IPv4 ARP; other layouts come back with hex strings for the addresses. */
export function parseArp(view: ArpView): ArpRepr & { hardwareType: number; protocolType: number } {
  const { buf } = view;
  const hex = (offset: number, length: number): string => buf.toString('hex', offset, offset + length);
  const ethIp = view.isEthernetIpv4;
  return {
    hardwareType: view.hardwareType,
    protocolType: view.protocolType,
    operation: view.operation,
    senderMac: ethIp ? formatMac(buf, view.senderHardwareOffset) : hex(view.senderHardwareOffset, view.hardwareLength),
    senderIp: ethIp ? formatIpv4(buf, view.senderProtocolOffset) : hex(view.senderProtocolOffset, view.protocolLength),
    targetMac: ethIp ? formatMac(buf, view.targetHardwareOffset) : hex(view.targetHardwareOffset, view.hardwareLength),
    targetIp: ethIp ? formatIpv4(buf, view.targetProtocolOffset) : hex(view.targetProtocolOffset, view.protocolLength),
  };
}

/** Writes an Ethernet/IPv4 ARP packet; returns 28. */
export function emitArp(repr: ArpRepr, buf: Buffer, offset: number): number {
  put16(buf, offset + F.HTYPE, 1);
  put16(buf, offset + F.PTYPE, 0x0800);
  buf[offset + F.HLEN] = 6;
  buf[offset + F.PLEN] = 4;
  put16(buf, offset + F.OPER, repr.operation);
  writeMac(repr.senderMac, buf, offset + 8);
  writeIpv4(repr.senderIp, buf, offset + 14);
  writeMac(repr.targetMac, buf, offset + 18);
  writeIpv4(repr.targetIp, buf, offset + 24);
  return ARP_ETHERNET_IPV4_LENGTH;
}
