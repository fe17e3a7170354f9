/** Why a capture file could not be read further. Stable strings: tests, docs and the summary key on them. */
export type CaptureErrorCode =
  /** The file ends inside the file header or the first block header. */
  | 'truncated-header'
  /** Neither a pcap magic number nor a pcapng section header (or a pcapng byte-order magic that is neither). */
  | 'bad-magic'
  /** A pcap file version other than 2.x, or a pcapng section version other than 1.x. */
  | 'unsupported-version'
  /** Only Ethernet (link type 1) and Linux cooked captures (113, 276: `tcpdump -i any`) are replayed. */
  | 'unknown-link-type'
  /** The file ends inside a record header (pcap) or a block's type and length (pcapng). */
  | 'truncated-record'
  /** A record's or block's length points past the end of the file. */
  | 'record-beyond-file'
  /** A record larger than any frame the proxy handles (256 KiB), or a pcapng block over 16 MiB. */
  | 'record-too-large'
  /** pcapng: a block length below 12, not a multiple of 4, or too small for the block's own fields. */
  | 'bad-block-length'
  /** pcapng: the length at the end of a block differs from the one at its start. */
  | 'block-length-mismatch'
  /** pcapng: a packet names an interface that no interface description block declared. */
  | 'unknown-interface'
  /** pcapng: an option runs past the end of its block. */
  | 'bad-option'
  /** pcapng: a packet's time (its timestamp plus the interface's if_tsoffset) is beyond ±2^40 s. */
  | 'timestamp-out-of-range';

/**
 * A capture file is bad from `offset` on. Readers return it as a value (reader.error) so everything read
 * before it is still replayed and reported; edges that want an exception may throw it.
 */
export class CaptureError extends Error {
  constructor(
    readonly code: CaptureErrorCode,
    readonly file: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`${file}: byte offset ${offset}: ${code}: ${detail}`);
    this.name = 'CaptureError';
  }
}
