import { cookedHeaderLength, cookedToEthernet, isReplayableLinkType } from './cooked.js';
import { CaptureError, type CaptureErrorCode } from './errors.js';
import type { ByteInput } from './input.js';
import {
  BYTE_ORDER_MAGIC,
  Block,
  BlockType,
  Epb,
  Idb,
  MAX_BLOCK_LENGTH,
  Option,
  Shb,
  Spb,
  pad4,
} from './pcapng-format.js';
import {
  CaptureRecord,
  LINKTYPE_ETHERNET,
  MAX_RECORD_LENGTH,
  splitTimestamp,
  type CaptureInterface,
  type CaptureReader,
} from './record.js';

interface InterfaceState extends CaptureInterface {
  /** if_tsoffset: seconds added to every timestamp (exact only within MAX_TIMESTAMP_SECONDS: checked per packet). */
  offsetSeconds: number;
  /** The same, exact, for the message when it is out of range. */
  offsetText: string;
}

/**
 * The latest capture time accepted, either side of 1970: about 34,800 years. Replay computes virtual time
 * in milliseconds as doubles, exact to 1/8 ms up to here; far beyond it a timer of 10 s no longer moves
 * the clock at all, so a packet out of this range is a read error, never a time.
 */
export const MAX_TIMESTAMP_SECONDS = 2 ** 40;

export interface PcapngReaderOptions {
  /** Return only packets of this interface index (counted across sections); others are skipped cheaply. */
  interfaceFilter?: number | null;
}

export class PcapngReader implements CaptureReader {
  readonly format = 'pcapng';
  readonly record = new CaptureRecord();
  readonly interfaces: InterfaceState[] = [];
  error: CaptureError | null = null;
  frames = 0;
  sections = 0;
  /** Comments of section header blocks, in file order. */
  readonly sectionComments: string[] = [];
  private littleEndian = true;
  /** Index in `interfaces` of this section's interface 0. */
  private sectionBase = 0;
  private pos = 0;
  private readonly filter: number | null;
  /** SPB carries no timestamp: it takes the previous packet's. */
  private readonly lastTime = { seconds: 0, nanoseconds: 0 };

  constructor(
    private readonly input: ByteInput,
    options: PcapngReaderOptions = {},
  ) {
    this.filter = options.interfaceFilter ?? null;
  }

  get file(): string {
    return this.input.name;
  }

  private fail(code: CaptureErrorCode, offset: number, detail: string): false {
    this.error = new CaptureError(code, this.input.name, offset, detail);
    return false;
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
    while (this.error === null) {
      const input = this.input;
      const pos = this.pos;
      if (!input.ensure(pos, Block.BODY)) {
        const left = input.available(pos);
        if (left === 0 && this.sections > 0) return false;
        if (this.sections === 0)
          return this.fail('truncated-header', pos, `file ends ${left} bytes into the first block`);
        return this.fail('truncated-record', pos, `file ends ${left} bytes into a block header`);
      }
      const type = input.buf.readUInt32LE(pos - input.base);
      if (type === BlockType.SECTION_HEADER) {
        if (!this.readSectionHeader(pos)) return false;
        continue;
      }
      if (this.sections === 0) {
        return this.fail('bad-magic', pos, `first block type 0x${type.toString(16)} is not a section header`);
      }
      const length = this.u32(pos + Block.LENGTH);
      if (!this.checkBlock(pos, length)) return false;
      this.pos = pos + length;
      const blockType = this.littleEndian ? type : input.buf.readUInt32BE(pos - input.base);
      if (blockType === BlockType.ENHANCED_PACKET) {
        if (this.readEnhancedPacket(pos, length)) return true;
      } else if (blockType === BlockType.SIMPLE_PACKET) {
        if (this.readSimplePacket(pos, length)) return true;
      } else if (blockType === BlockType.INTERFACE_DESCRIPTION) {
        this.readInterface(pos, length);
      }
      // Any other block type (name resolution, statistics, custom, ...) is skipped.
    }
    return false;
  }

  /** Length sanity, presence in the file and the trailing copy of the length. */
  private checkBlock(pos: number, length: number): boolean {
    if (length < Block.MIN_LENGTH || length % 4 !== 0) {
      return this.fail('bad-block-length', pos, `block length ${length} is below 12 or not a multiple of 4`);
    }
    if (length > MAX_BLOCK_LENGTH) {
      return this.fail('record-too-large', pos, `block length ${length} exceeds ${MAX_BLOCK_LENGTH}`);
    }
    if (!this.input.ensure(pos, length)) {
      return this.fail(
        'record-beyond-file',
        pos,
        `block length ${length} runs past the end of the file (${this.input.available(pos)} bytes left)`,
      );
    }
    const trailing = this.u32(pos + length - 4);
    if (trailing !== length) {
      return this.fail('block-length-mismatch', pos, `block starts with length ${length} but ends with ${trailing}`);
    }
    return true;
  }

  private readSectionHeader(pos: number): boolean {
    const input = this.input;
    if (!input.ensure(pos, Shb.MAJOR)) {
      const code = this.sections === 0 ? 'truncated-header' : 'truncated-record';
      return this.fail(code, pos, `file ends ${input.available(pos)} bytes into a section header`);
    }
    const magic = input.buf.readUInt32LE(pos + Shb.BYTE_ORDER_MAGIC - input.base);
    if (magic === BYTE_ORDER_MAGIC) this.littleEndian = true;
    else if (magic === 0x4d3c2b1a) this.littleEndian = false;
    else return this.fail('bad-magic', pos + Shb.BYTE_ORDER_MAGIC, `byte-order magic 0x${magic.toString(16)}`);
    const length = this.u32(pos + Block.LENGTH);
    if (!this.checkBlock(pos, length)) return false;
    if (length < Shb.OPTIONS + 4) return this.fail('bad-block-length', pos, `section header length ${length} below 28`);
    const major = this.u16(pos + Shb.MAJOR);
    if (major !== 1) return this.fail('unsupported-version', pos + Shb.MAJOR, `pcapng version ${major}`);
    this.sections++;
    this.sectionBase = this.interfaces.length;
    const comment = this.readOptions(pos, pos + Shb.OPTIONS, pos + length - 4, null);
    if (comment === false) return false;
    if (comment !== null) this.sectionComments.push(comment);
    this.pos = pos + length;
    return true;
  }

  private readInterface(pos: number, length: number): void {
    if (length < Idb.OPTIONS + 4) {
      this.fail('bad-block-length', pos, `interface description length ${length} below 20`);
      return;
    }
    const iface: InterfaceState = {
      index: this.interfaces.length,
      section: this.sections - 1,
      linkType: this.u16(pos + Idb.LINKTYPE),
      snaplen: this.u32(pos + Idb.SNAPLEN),
      name: null,
      unitsPerSecond: 1e6,
      offsetSeconds: 0,
      offsetText: '0',
    };
    this.readOptions(pos, pos + Idb.OPTIONS, pos + length - 4, iface);
    this.interfaces.push(iface);
  }

  /**
   * Walks an option list; fills interface options into `iface` when given. Returns the block's comment
   * (null when none) or false after recording a bad-option error.
   */
  private readOptions(blockPos: number, from: number, to: number, iface: InterfaceState | null): string | null | false {
    const buf = this.input.buf;
    const base = this.input.base;
    let comment: string | null = null;
    let at = from;
    while (at + 4 <= to) {
      const code = this.u16(at);
      const length = this.u16(at + 2);
      if (code === Option.END) break;
      const value = at + 4;
      if (value + length > to) {
        return this.fail('bad-option', at, `option ${code} of length ${length} runs past its block at ${blockPos}`);
      }
      if (code === Option.COMMENT && comment === null) {
        comment = buf.toString('utf8', value - base, value - base + length);
      } else if (iface !== null && code === Option.IF_NAME) {
        iface.name = buf.toString('utf8', value - base, value - base + length);
      } else if (iface !== null && code === Option.IF_TSRESOL && length >= 1) {
        const resolution = buf[value - base];
        const exponent = resolution & 0x7f;
        iface.unitsPerSecond = resolution & 0x80 ? 2 ** exponent : 10 ** exponent;
      } else if (iface !== null && code === Option.IF_TSOFFSET && length >= 8) {
        const high = this.u32(value + (this.littleEndian ? 4 : 0));
        const low = this.u32(value + (this.littleEndian ? 0 : 4));
        iface.offsetSeconds = (high | 0) * 4294967296 + low;
        iface.offsetText = ((BigInt(high | 0) << 32n) + BigInt(low)).toString();
      }
      at = value + pad4(length);
    }
    return comment;
  }

  private packetInterface(pos: number, local: number): InterfaceState | null {
    const index = this.sectionBase + local;
    const iface = this.interfaces[index];
    if (iface === undefined || iface.section !== this.sections - 1) {
      this.fail(
        'unknown-interface',
        pos,
        `packet names interface ${local}, but the section declares ${this.interfaces.length - this.sectionBase}`,
      );
      return null;
    }
    return iface;
  }

  private failLinkType(pos: number, iface: InterfaceState): false {
    const supported = 'only 1, Ethernet, and 113/276, Linux cooked, are supported';
    return this.fail(
      'unknown-link-type',
      pos,
      `interface ${iface.index} has link type ${iface.linkType} (${supported})`,
    );
  }

  /** A packet time out of range: names if_tsoffset when the offset alone is out of range, else the timestamp. */
  private failTime(pos: number, iface: InterfaceState): false {
    const range = `within ±2^40 s (${MAX_TIMESTAMP_SECONDS} s) of 1970`;
    if (!(Math.abs(iface.offsetSeconds) <= MAX_TIMESTAMP_SECONDS)) {
      return this.fail(
        'timestamp-out-of-range',
        pos,
        `interface ${iface.index}: if_tsoffset ${iface.offsetText} s puts its packets out of range (expected ${range})`,
      );
    }
    const ticks = (BigInt(this.u32(pos + Epb.TS_HIGH)) << 32n) + BigInt(this.u32(pos + Epb.TS_LOW));
    const offset = iface.offsetSeconds === 0 ? '' : ` plus if_tsoffset ${iface.offsetText} s`;
    return this.fail(
      'timestamp-out-of-range',
      pos,
      `interface ${iface.index}: packet timestamp ${ticks} (1/${iface.unitsPerSecond} s units)${offset} is out of range (expected ${range})`,
    );
  }

  private readEnhancedPacket(pos: number, length: number): boolean {
    if (length < Epb.DATA + 4)
      return this.fail('bad-block-length', pos, `enhanced packet block length ${length} below 32`);
    const local = this.u32(pos + Epb.INTERFACE_ID);
    const iface = this.packetInterface(pos, local);
    if (iface === null) return false;
    if (this.filter !== null && iface.index !== this.filter) return false;
    if (!isReplayableLinkType(iface.linkType)) return this.failLinkType(pos, iface);
    const captured = this.u32(pos + Epb.CAPTURED_LEN);
    const dataEnd = pos + Epb.DATA + pad4(captured);
    if (captured > MAX_RECORD_LENGTH || dataEnd > pos + length - 4) {
      return this.fail('bad-block-length', pos, `captured length ${captured} does not fit block length ${length}`);
    }
    const record = this.record;
    splitTimestamp(this.u32(pos + Epb.TS_HIGH), this.u32(pos + Epb.TS_LOW), iface.unitsPerSecond, record);
    record.seconds += iface.offsetSeconds;
    if (!(Math.abs(record.seconds) <= MAX_TIMESTAMP_SECONDS)) return this.failTime(pos, iface);
    this.lastTime.seconds = record.seconds;
    this.lastTime.nanoseconds = record.nanoseconds;
    record.originalLength = this.u32(pos + Epb.ORIGINAL_LEN);
    return this.finishPacket(pos, length, iface, Epb.DATA, captured, dataEnd);
  }

  private readSimplePacket(pos: number, length: number): boolean {
    if (length < Spb.DATA + 4)
      return this.fail('bad-block-length', pos, `simple packet block length ${length} below 16`);
    const iface = this.packetInterface(pos, 0);
    if (iface === null) return false;
    if (this.filter !== null && iface.index !== this.filter) return false;
    if (!isReplayableLinkType(iface.linkType)) return this.failLinkType(pos, iface);
    const original = this.u32(pos + Spb.ORIGINAL_LEN);
    let captured = Math.min(original, length - Spb.DATA - 4);
    if (iface.snaplen > 0) captured = Math.min(captured, iface.snaplen);
    const record = this.record;
    record.seconds = this.lastTime.seconds;
    record.nanoseconds = this.lastTime.nanoseconds;
    record.originalLength = original;
    return this.finishPacket(pos, length, iface, Spb.DATA, captured, pos + length - 4);
  }

  private finishPacket(
    pos: number,
    length: number,
    iface: InterfaceState,
    dataField: number,
    captured: number,
    optionsFrom: number,
  ): boolean {
    const record = this.record;
    const start = pos + dataField - this.input.base;
    record.data = this.input.buf.subarray(start, start + captured);
    record.interfaceId = iface.index;
    record.offset = pos;
    record.comment = null;
    if (optionsFrom < pos + length - 4) {
      const comment = this.readOptions(pos, optionsFrom, pos + length - 4, null);
      if (comment === false) return false;
      record.comment = comment;
    }
    if (iface.linkType !== LINKTYPE_ETHERNET) {
      const frame = cookedToEthernet(iface.linkType, record.data);
      if (frame === null) {
        const header = cookedHeaderLength(iface.linkType);
        return this.fail('truncated-record', pos, `packet of ${captured} bytes has no ${header}-byte cooked header`);
      }
      record.originalLength -= record.data.length - frame.length;
      record.data = frame;
    }
    this.frames++;
    return true;
  }

  close(): void {
    this.input.close();
  }
}
