import { BYTE_ORDER_MAGIC, Block, BlockType, Epb, Idb, Option, Shb, pad4 } from './pcapng-format.js';
import { LINKTYPE_ETHERNET } from './record.js';
import { StagedOutput, type ByteSink } from './sink.js';

export interface PcapngInterfaceOptions {
  linkType?: number;
  /** 0 = no limit. */
  snaplen?: number;
  name?: string;
  /** Decimal exponent of the timestamp unit: 6 = µs, 9 = ns (default). */
  tsresol?: number;
}

export interface PcapngWriterOptions {
  /** Default false: little-endian. */
  bigEndian?: boolean;
  /** opt_comment of the first section header. */
  comment?: string;
  /** shb_userappl. Default "colo-proxy". */
  application?: string;
}

export interface PcapngPacketOptions {
  comment?: string;
  originalLength?: number;
}

interface OptionValue {
  code: number;
  value: Buffer;
}

/** Writes pcapng: sections, interfaces, enhanced packet blocks with optional comments. */
export class PcapngWriter {
  private readonly out: StagedOutput;
  private readonly bigEndian: boolean;
  /** Units per second of each interface of the current section. */
  private units: bigint[] = [];
  private readonly application: string;

  constructor(sink: ByteSink, options: PcapngWriterOptions = {}) {
    this.out = new StagedOutput(sink);
    this.bigEndian = options.bigEndian ?? false;
    this.application = options.application ?? 'colo-proxy';
    this.newSection(options.comment);
  }

  /** Starts a new section: interface numbering starts again at 0. */
  newSection(comment?: string): void {
    this.units = [];
    const options = this.optionList(comment, [{ code: Option.SHB_USERAPPL, value: Buffer.from(this.application) }]);
    const length = Shb.OPTIONS + options.length + 4;
    const at = this.beginBlock(BlockType.SECTION_HEADER, length);
    this.put32(at + Shb.BYTE_ORDER_MAGIC, BYTE_ORDER_MAGIC);
    this.put16(at + Shb.MAJOR, 1);
    this.put16(at + Shb.MINOR, 0);
    // Section length unknown (-1): the file is streamed.
    this.out.current.fill(0xff, at + Shb.SECTION_LENGTH, at + Shb.SECTION_LENGTH + 8);
    options.copy(this.out.current, at + Shb.OPTIONS);
  }

  /** Declares an interface in the current section; returns its id (0, 1, ... within the section). */
  addInterface(options: PcapngInterfaceOptions = {}): number {
    const tsresol = options.tsresol ?? 9;
    const extra: OptionValue[] = [{ code: Option.IF_TSRESOL, value: Buffer.from([tsresol]) }];
    if (options.name !== undefined) extra.unshift({ code: Option.IF_NAME, value: Buffer.from(options.name) });
    const list = this.optionList(undefined, extra);
    const at = this.beginBlock(BlockType.INTERFACE_DESCRIPTION, Idb.OPTIONS + list.length + 4);
    this.put16(at + Idb.LINKTYPE, options.linkType ?? LINKTYPE_ETHERNET);
    this.put32(at + Idb.SNAPLEN, options.snaplen ?? 0);
    list.copy(this.out.current, at + Idb.OPTIONS);
    this.units.push(10n ** BigInt(tsresol));
    return this.units.length - 1;
  }

  /** Appends an enhanced packet block. */
  writePacket(
    interfaceId: number,
    seconds: number,
    nanoseconds: number,
    frame: Buffer,
    options: PcapngPacketOptions = {},
  ): void {
    const units = this.units[interfaceId];
    if (units === undefined) throw new RangeError(`pcapng interface ${interfaceId} was not added`);
    const list = options.comment === undefined ? null : this.optionList(options.comment, []);
    const length = Epb.DATA + pad4(frame.length) + (list?.length ?? 0) + 4;
    const at = this.beginBlock(BlockType.ENHANCED_PACKET, length);
    // BigInt: the 64-bit count of nanoseconds since 1970 does not fit a double exactly.
    const ts = BigInt(seconds) * units + (BigInt(nanoseconds) * units) / 1_000_000_000n;
    this.put32(at + Epb.INTERFACE_ID, interfaceId);
    this.put32(at + Epb.TS_HIGH, Number(ts >> 32n));
    this.put32(at + Epb.TS_LOW, Number(ts & 0xffffffffn));
    this.put32(at + Epb.CAPTURED_LEN, frame.length);
    this.put32(at + Epb.ORIGINAL_LEN, Math.max(options.originalLength ?? frame.length, frame.length));
    frame.copy(this.out.current, at + Epb.DATA);
    list?.copy(this.out.current, at + Epb.DATA + pad4(frame.length));
  }

  /** Hands everything staged to the sink. */
  flush(): void {
    this.out.flush();
  }

  /** Reserves a zeroed block with both length fields set; returns its offset in out.current. */
  private beginBlock(type: number, length: number): number {
    const at = this.out.reserve(length);
    this.put32(at + Block.TYPE, type);
    this.put32(at + Block.LENGTH, length);
    this.put32(at + length - 4, length);
    return at;
  }

  /** Encodes options (comment first), ending with opt_endofopt; empty when there are none. */
  private optionList(comment: string | undefined, others: OptionValue[]): Buffer {
    const all = comment === undefined ? others : [{ code: Option.COMMENT, value: Buffer.from(comment) }, ...others];
    if (all.length === 0) return Buffer.alloc(0);
    const size = all.reduce((sum, o) => sum + 4 + pad4(o.value.length), 4);
    const buf = Buffer.alloc(size);
    let at = 0;
    for (const o of all) {
      if (this.bigEndian) {
        buf.writeUInt16BE(o.code, at);
        buf.writeUInt16BE(o.value.length, at + 2);
      } else {
        buf.writeUInt16LE(o.code, at);
        buf.writeUInt16LE(o.value.length, at + 2);
      }
      o.value.copy(buf, at + 4);
      at += 4 + pad4(o.value.length);
    }
    return buf;
  }

  private put16(at: number, v: number): void {
    if (this.bigEndian) this.out.current.writeUInt16BE(v, at);
    else this.out.current.writeUInt16LE(v, at);
  }

  private put32(at: number, v: number): void {
    if (this.bigEndian) this.out.current.writeUInt32BE(v >>> 0, at);
    else this.out.current.writeUInt32LE(v >>> 0, at);
  }
}
