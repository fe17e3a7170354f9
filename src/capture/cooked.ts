import { LINKTYPE_ETHERNET } from './record.js';

/**
 * Linux cooked captures, which `tcpdump -i any` writes: each record starts with a pseudo-header (the
 * sender's link-layer address, the packet's direction, its protocol) instead of an Ethernet header. The
 * readers turn every such record into an Ethernet frame, so the rest of the replay sees one link type.
 * Layouts: https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html and LINKTYPE_LINUX_SLL2.html.
 */
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

/** Fields of the two cooked headers (all big-endian). */
const Sll = { PACKET_TYPE: 0, ADDRESS_LENGTH: 4, ADDRESS: 6, PROTOCOL: 14, LENGTH: 16 } as const;
const Sll2 = { PROTOCOL: 0, PACKET_TYPE: 10, ADDRESS_LENGTH: 11, ADDRESS: 12, LENGTH: 20 } as const;

const ETHERNET_HEADER = 14;
const MAC_LENGTH = 6;
const PACKET_BROADCAST = 1;
/** Below this the cooked protocol field is not an EtherType (1: raw 802.3, 4: 802.2 LLC, ...). */
const MIN_ETHERTYPE = 0x0600;
/** The sender's address, copied out first: the Ethernet header overwrites where it was. */
const source = Buffer.alloc(MAC_LENGTH);

/** The link types the readers hand on (as Ethernet frames). */
export function isReplayableLinkType(linkType: number): boolean {
  return linkType === LINKTYPE_ETHERNET || linkType === LINKTYPE_LINUX_SLL || linkType === LINKTYPE_LINUX_SLL2;
}

/** The cooked header's length for a cooked link type, else 0. */
export function cookedHeaderLength(linkType: number): number {
  if (linkType === LINKTYPE_LINUX_SLL) return Sll.LENGTH;
  if (linkType === LINKTYPE_LINUX_SLL2) return Sll2.LENGTH;
  return 0;
}

/**
 * Rewrites the cooked header at the start of `data` into an Ethernet header in place (14 bytes fit where
 * the 16 or 20 of the cooked header were: no copy per record) and returns the frame, a subarray of `data`.
 * The sender's link-layer address stands in for the source MAC (zeros when it has none, as on lo). The
 * cooked header has no destination address: the destination MAC is ff:ff:ff:ff:ff:ff for a broadcast, else
 * zeros. A protocol below 0x0600 becomes an 802.3 length field. Null when `data` is shorter than the header.
 */
export function cookedToEthernet(linkType: number, data: Buffer): Buffer | null {
  const sll2 = linkType === LINKTYPE_LINUX_SLL2;
  const layout = sll2 ? Sll2 : Sll;
  if (data.length < layout.LENGTH) return null;
  const packetType = sll2 ? data[Sll2.PACKET_TYPE] : data.readUInt16BE(Sll.PACKET_TYPE);
  const addressLength = sll2 ? data[Sll2.ADDRESS_LENGTH] : data.readUInt16BE(Sll.ADDRESS_LENGTH);
  const protocol = data.readUInt16BE(layout.PROTOCOL);
  source.fill(0);
  data.copy(source, 0, layout.ADDRESS, layout.ADDRESS + Math.min(addressLength, MAC_LENGTH));
  const at = layout.LENGTH - ETHERNET_HEADER;
  const frame = data.subarray(at);
  frame.fill(packetType === PACKET_BROADCAST ? 0xff : 0, 0, MAC_LENGTH);
  source.copy(frame, MAC_LENGTH);
  const payload = frame.length - ETHERNET_HEADER;
  frame.writeUInt16BE(protocol >= MIN_ETHERTYPE ? protocol : Math.min(payload, 1500), 2 * MAC_LENGTH);
  return frame;
}
