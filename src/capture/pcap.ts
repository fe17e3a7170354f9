import { cookedHeaderLength, cookedToEthernet, isReplayableLinkType } from './cooked.js';
import { CaptureError } from './errors.js';
import type { ByteInput } from './input.js';
import {
  CaptureRecord,
  LINKTYPE_ETHERNET,
  MAX_RECORD_LENGTH,
  type CaptureInterface,
  type CaptureReader,
} from './record.js';
import { StagedOutput, type ByteSink } from './sink.js';

/** Classic pcap: a 24-byte file header, then 16-byte record headers each followed by the captured bytes. */
export const PcapMagic = { MICRO: 0xa1b2c3d4, NANO: 0xa1b23c4d } as const;

const FileHeader = {
  MAGIC: 0,
  VERSION_MAJOR: 4,
  VERSION_MINOR: 6,
  THISZONE: 8,
  SIGFIGS: 12,
  SNAPLEN: 16,
  LINKTYPE: 20,
  LENGTH: 24,
} as const;
const RecordHeader = { TS_SEC: 0, TS_FRAC: 4, INCL_LEN: 8, ORIG_LEN: 12, LENGTH: 16 } as const;

/** True when the first four bytes are a pcap magic number in either byte order. */
export function isPcapMagic(buf: Buffer, offset = 0): boolean {
  if (buf.length < offset + 4) return false;
  const le = buf.readUInt32LE(offset);
  const be = buf.readUInt32BE(offset);
  return le === PcapMagic.MICRO || le === PcapMagic.NANO || be === PcapMagic.MICRO || be === PcapMagic.NANO;
}

/** An unsigned 32-bit field at buf[at..at+4), which the caller has checked is present. */
function readU32(buf: Buffer, at: number, littleEndian: boolean): number {
  return littleEndian
    ? (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0
    : ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

export class PcapReader implements CaptureReader {
  readonly format = 'pcap';
  readonly record = new CaptureRecord();
  readonly interfaces: CaptureInterface[] = [];
  error: CaptureError | null = null;
  frames = 0;
  /** Set from the file header. */
  littleEndian = true;
  nanosecond = false;
  snaplen = 0;
  /** The cooked link type (113, 276) whose records are rewritten into Ethernet frames, else 0. */
  private cooked = 0;
  private pos: number = FileHeader.LENGTH;

  constructor(private readonly input: ByteInput) {
    this.readFileHeader();
  }

  get file(): string {
    return this.input.name;
  }

  private fail(code: CaptureError['code'], offset: number, detail: string): false {
    this.error = new CaptureError(code, this.input.name, offset, detail);
    return false;
  }

  private readFileHeader(): void {
    const input = this.input;
    if (!input.ensure(0, 4)) {
      this.fail('truncated-header', 0, `file is ${input.available(0)} bytes, shorter than a capture header`);
      return;
    }
    const le = input.buf.readUInt32LE(0);
    const be = input.buf.readUInt32BE(0);
    if (le === PcapMagic.MICRO || le === PcapMagic.NANO) {
      this.littleEndian = true;
      this.nanosecond = le === PcapMagic.NANO;
    } else if (be === PcapMagic.MICRO || be === PcapMagic.NANO) {
      this.littleEndian = false;
      this.nanosecond = be === PcapMagic.NANO;
    } else {
      this.fail('bad-magic', 0, `magic 0x${be.toString(16).padStart(8, '0')} is neither pcap nor pcapng`);
      return;
    }
    if (!input.ensure(0, FileHeader.LENGTH)) {
      this.fail('truncated-header', 0, `pcap file header needs 24 bytes, file has ${input.available(0)}`);
      return;
    }
    const major = this.u16(FileHeader.VERSION_MAJOR);
    if (major !== 2) {
      this.fail(
        'unsupported-version',
        FileHeader.VERSION_MAJOR,
        `pcap version ${major}.${this.u16(FileHeader.VERSION_MINOR)}`,
      );
      return;
    }
    this.snaplen = this.u32(FileHeader.SNAPLEN);
    // The upper bits may carry FCS information; the link type is the low 16 bits.
    const linkType = this.u32(FileHeader.LINKTYPE) & 0xffff;
    this.interfaces.push({
      index: 0,
      section: 0,
      linkType,
      snaplen: this.snaplen,
      name: null,
      unitsPerSecond: this.nanosecond ? 1e9 : 1e6,
    });
    if (!isReplayableLinkType(linkType)) {
      this.fail(
        'unknown-link-type',
        FileHeader.LINKTYPE,
        `link type ${linkType} (only 1, Ethernet, and 113/276, Linux cooked, are supported)`,
      );
    }
    if (linkType !== LINKTYPE_ETHERNET) this.cooked = linkType;
  }

  private u16(fileOffset: number): number {
    const at = fileOffset - this.input.base;
    return this.littleEndian ? this.input.buf.readUInt16LE(at) : this.input.buf.readUInt16BE(at);
  }

  private u32(fileOffset: number): number {
    const at = fileOffset - this.input.base;
    return this.littleEndian ? this.input.buf.readUInt32LE(at) : this.input.buf.readUInt32BE(at);
  }

  next(): boolean {
    if (this.error !== null) return false;
    const input = this.input;
    const pos = this.pos;
    if (!input.ensure(pos, RecordHeader.LENGTH)) {
      const left = input.available(pos);
      if (left === 0) return false;
      return this.fail('truncated-record', pos, `file ends ${left} bytes into a 16-byte record header`);
    }
    // The hot loop: plain byte reads (ensure() above covered them) instead of a checked Buffer call per field.
    const le = this.littleEndian;
    const included = readU32(input.buf, pos - input.base + RecordHeader.INCL_LEN, le);
    if (included > MAX_RECORD_LENGTH) {
      return this.fail('record-too-large', pos, `record length ${included} exceeds ${MAX_RECORD_LENGTH}`);
    }
    const dataAt = pos + RecordHeader.LENGTH;
    // From the record's start: a new chunk begins at the offset asked for, and the header is read below.
    if (!input.ensure(pos, RecordHeader.LENGTH + included)) {
      return this.fail(
        'record-beyond-file',
        pos,
        `record length ${included} runs past the end of the file (${input.available(dataAt)} bytes left)`,
      );
    }
    const record = this.record;
    const buf = input.buf;
    const at = pos - input.base;
    const seconds = readU32(buf, at + RecordHeader.TS_SEC, le);
    const fraction = readU32(buf, at + RecordHeader.TS_FRAC, le);
    record.originalLength = readU32(buf, at + RecordHeader.ORIG_LEN, le);
    const nanoseconds = this.nanosecond ? fraction : fraction * 1000;
    if (nanoseconds < 1e9) {
      record.seconds = seconds;
      record.nanoseconds = nanoseconds;
    } else {
      // Some writers let the fraction reach a whole second; carry it rather than reject the file.
      const carry = Math.floor(nanoseconds / 1e9);
      record.seconds = seconds + carry;
      record.nanoseconds = nanoseconds - carry * 1e9;
    }
    const start = at + RecordHeader.LENGTH;
    record.data = buf.subarray(start, start + included);
    record.offset = pos;
    record.interfaceId = 0;
    this.pos = dataAt + included;
    if (this.cooked !== 0 && !this.uncook(pos)) return false;
    this.frames++;
    return true;
  }

  private uncook(pos: number): boolean {
    const record = this.record;
    const frame = cookedToEthernet(this.cooked, record.data);
    if (frame === null) {
      const header = cookedHeaderLength(this.cooked);
      return this.fail(
        'truncated-record',
        pos,
        `record of ${record.data.length} bytes has no ${header}-byte cooked header`,
      );
    }
    record.originalLength -= record.data.length - frame.length;
    record.data = frame;
    return true;
  }

  close(): void {
    this.input.close();
  }
}

export interface PcapWriterOptions {
  /** Nanosecond timestamps (magic a1b23c4d) instead of microseconds. Default false. */
  nanosecond?: boolean;
  /** Default false (little-endian, as tcpdump writes on x86). */
  bigEndian?: boolean;
  /** Frames longer than this are cut (the original length is kept). Default 262144. */
  snaplen?: number;
  linkType?: number;
}

export class PcapWriter {
  private readonly out: StagedOutput;
  private readonly nanosecond: boolean;
  private readonly bigEndian: boolean;
  readonly snaplen: number;

  constructor(sink: ByteSink, options: PcapWriterOptions = {}) {
    this.out = new StagedOutput(sink);
    this.nanosecond = options.nanosecond ?? false;
    this.bigEndian = options.bigEndian ?? false;
    this.snaplen = options.snaplen ?? MAX_RECORD_LENGTH;
    const at = this.out.reserve(FileHeader.LENGTH);
    this.put32(at + FileHeader.MAGIC, this.nanosecond ? PcapMagic.NANO : PcapMagic.MICRO);
    this.put16(at + FileHeader.VERSION_MAJOR, 2);
    this.put16(at + FileHeader.VERSION_MINOR, 4);
    this.put32(at + FileHeader.SNAPLEN, this.snaplen);
    this.put32(at + FileHeader.LINKTYPE, options.linkType ?? LINKTYPE_ETHERNET);
  }

  private put16(at: number, v: number): void {
    if (this.bigEndian) this.out.current.writeUInt16BE(v, at);
    else this.out.current.writeUInt16LE(v, at);
  }

  private put32(at: number, v: number): void {
    if (this.bigEndian) this.out.current.writeUInt32BE(v >>> 0, at);
    else this.out.current.writeUInt32LE(v >>> 0, at);
  }

  /** Appends one frame. Microsecond files keep floor(nanoseconds / 1000). */
  write(seconds: number, nanoseconds: number, frame: Buffer, originalLength = frame.length): void {
    const included = Math.min(frame.length, this.snaplen);
    const at = this.out.reserve(RecordHeader.LENGTH + included);
    this.put32(at + RecordHeader.TS_SEC, seconds);
    this.put32(at + RecordHeader.TS_FRAC, this.nanosecond ? nanoseconds : Math.floor(nanoseconds / 1000));
    this.put32(at + RecordHeader.INCL_LEN, included);
    this.put32(at + RecordHeader.ORIG_LEN, Math.max(originalLength, included));
    frame.copy(this.out.current, at + RecordHeader.LENGTH, 0, included);
  }

  /** Hands everything staged to the sink; call before closing the sink. */
  flush(): void {
    this.out.flush();
  }
}
