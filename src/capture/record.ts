import type { CaptureError } from './errors.js';

export const LINKTYPE_ETHERNET = 1;
/** The largest record the readers accept: far above the 69632-byte frames the proxy handles. */
export const MAX_RECORD_LENGTH = 262144;

const EMPTY = Buffer.alloc(0);

/**
 * One record, as a view the reader overwrites on every next(): nothing is allocated per record except
 * the `data` subarray (and the comment string, only when the record has one).
 */
export class CaptureRecord {
  /** pcapng: the interface index counted across sections in file order; pcap: 0. */
  interfaceId = 0;
  /** Capture time: whole seconds since the Unix epoch, and nanoseconds within that second. */
  seconds = 0;
  nanoseconds = 0;
  /** The captured bytes (a subarray of the reader's chunk: valid after next() moves on). */
  data: Buffer = EMPTY;
  /** The frame's length on the wire (>= data.length when the capture was cut at snaplen). */
  originalLength = 0;
  /** Byte offset of the record (pcap) or block (pcapng) in the file. */
  offset = 0;
  /** pcapng opt_comment, else null. */
  comment: string | null = null;

  /** Capture time in ms since the epoch (float: exact to well under a microsecond). */
  timeMs(): number {
    return this.seconds * 1000 + this.nanoseconds / 1e6;
  }
}

export interface CaptureInterface {
  /** Index counted across sections in file order. */
  index: number;
  section: number;
  linkType: number;
  snaplen: number;
  name: string | null;
  /** Timestamp units per second (pcap: 1e6 or 1e9; pcapng: from if_tsresol, default 1e6). */
  unitsPerSecond: number;
}

export interface CaptureReader {
  readonly file: string;
  readonly format: 'pcap' | 'pcapng';
  /** Overwritten by each next(). */
  readonly record: CaptureRecord;
  readonly interfaces: readonly CaptureInterface[];
  /** Set when next() returned false because the file is bad from some offset on; null at a clean end. */
  readonly error: CaptureError | null;
  /** Frames returned so far. */
  readonly frames: number;
  /** Advances to the next record; false at the end of the file or at the first error. */
  next(): boolean;
  close(): void;
}

/** Splits a timestamp counted in `unitsPerSecond` (given as high and low 32-bit words) into s and ns. */
export function splitTimestamp(
  high: number,
  low: number,
  unitsPerSecond: number,
  out: { seconds: number; nanoseconds: number },
): void {
  // Whole-number long division in 16-bit steps: the 64-bit count itself does not fit a double, but every
  // partial remainder stays below unitsPerSecond * 2^16, exact for units up to 2^37 (picoseconds need BigInt).
  if (unitsPerSecond <= 2 ** 37) {
    const u = unitsPerSecond;
    const a = Math.floor(high / u);
    let r = high - a * u;
    r = r * 65536 + (low >>> 16);
    const q1 = Math.floor(r / u);
    r -= q1 * u;
    r = r * 65536 + (low & 0xffff);
    const q2 = Math.floor(r / u);
    r -= q2 * u;
    out.seconds = a * 4294967296 + q1 * 65536 + q2;
    if (u <= 1e9 && 1e9 % u === 0) out.nanoseconds = r * (1e9 / u);
    else if (r * 1e9 <= Number.MAX_SAFE_INTEGER) out.nanoseconds = Math.floor((r * 1e9) / u);
    else out.nanoseconds = Number((BigInt(r) * 1_000_000_000n) / BigInt(u));
    return;
  }
  const total = (BigInt(high) << 32n) | BigInt(low);
  const units = BigInt(unitsPerSecond);
  out.seconds = Number(total / units);
  out.nanoseconds = Number(((total % units) * 1_000_000_000n) / units);
}
