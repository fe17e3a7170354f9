/** pcapng (draft-ietf-opsawg-pcapng): block types, field offsets and option codes used here. */

export const BlockType = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  SIMPLE_PACKET: 0x00000003,
  ENHANCED_PACKET: 0x00000006,
} as const;

export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** Every block: type, total length, body, total length again. */
export const Block = { TYPE: 0, LENGTH: 4, BODY: 8, MIN_LENGTH: 12 } as const;
export const Shb = { BYTE_ORDER_MAGIC: 8, MAJOR: 12, MINOR: 14, SECTION_LENGTH: 16, OPTIONS: 24 } as const;
export const Idb = { LINKTYPE: 8, RESERVED: 10, SNAPLEN: 12, OPTIONS: 16 } as const;
export const Epb = { INTERFACE_ID: 8, TS_HIGH: 12, TS_LOW: 16, CAPTURED_LEN: 20, ORIGINAL_LEN: 24, DATA: 28 } as const;
export const Spb = { ORIGINAL_LEN: 8, DATA: 12 } as const;

export const Option = { END: 0, COMMENT: 1, IF_NAME: 2, IF_TSRESOL: 9, IF_TSOFFSET: 14, SHB_USERAPPL: 4 } as const;

/** Blocks bigger than this are taken as corruption rather than read whole. */
export const MAX_BLOCK_LENGTH = 16 << 20;

export function pad4(n: number): number {
  return (n + 3) & ~3;
}
