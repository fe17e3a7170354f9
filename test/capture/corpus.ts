/**
 * The malformed-capture corpus: each entry a file this repo makes itself, with the error the readers
 * must give (code, byte offset) and how many frames they must still return before it. docs/replay.md
 * lists the same table.
 */
import { BufferSink } from '../../src/capture/sink.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { PcapngWriter } from '../../src/capture/pcapng-writer.js';
import type { CaptureErrorCode } from '../../src/capture/errors.js';

export interface CorpusEntry {
  name: string;
  bytes: Buffer;
  code: CaptureErrorCode;
  offset: number;
  framesBefore: number;
}

/** A 60-byte frame whose bytes say which record it is. */
export function corpusFrame(n: number): Buffer {
  return Buffer.alloc(60, n);
}

function pcap(frames: number, options: { bigEndian?: boolean; nanosecond?: boolean } = {}): Buffer {
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, options);
  for (let i = 0; i < frames; i++) writer.write(1700000000 + i, 0, corpusFrame(i));
  writer.flush();
  return sink.toBuffer();
}

const PCAP_HEADER = 24;
const PCAP_RECORD = 16 + 60;

/** pcapng: SHB (with the writer's shb_userappl option), one IDB, `frames` EPBs. Block sizes below. */
function pcapng(frames: number, linkType = 1): Buffer {
  const sink = new BufferSink();
  const writer = new PcapngWriter(sink);
  writer.addInterface({ linkType });
  for (let i = 0; i < frames; i++) writer.writePacket(0, 1700000000 + i, 0, corpusFrame(i));
  writer.flush();
  return sink.toBuffer();
}

// SHB: 24 fixed + shb_userappl "colo-proxy" (4 + 12) + end (4) + 4 = 48. IDB: 16 + if_tsresol (8) + end (4) + 4 = 32.
const SHB = 48;
const IDB = 32;
const EPB = 28 + 60 + 4;

export function malformedCorpus(): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  const add = (name: string, bytes: Buffer, code: CaptureErrorCode, offset: number, framesBefore = 0): void => {
    entries.push({ name, bytes, code, offset, framesBefore });
  };

  add('empty.pcap', Buffer.alloc(0), 'truncated-header', 0);
  add('short-header.pcap', pcap(0).subarray(0, 10), 'truncated-header', 0);
  add('text.pcap', Buffer.from('this is not a capture\n'), 'bad-magic', 0);

  const linkType = pcap(1);
  linkType.writeUInt32LE(101, 20);
  add('raw-ip.pcap', linkType, 'unknown-link-type', 20);

  const version = pcap(1);
  version.writeUInt16LE(3, 4);
  add('version-3.pcap', version, 'unsupported-version', 4);

  add(
    'cut-record-header.pcap',
    pcap(3).subarray(0, PCAP_HEADER + 2 * PCAP_RECORD + 7),
    'truncated-record',
    PCAP_HEADER + 2 * PCAP_RECORD,
    2,
  );
  add(
    'cut-record-data.pcap',
    pcap(2).subarray(0, PCAP_HEADER + PCAP_RECORD + 16 + 30),
    'record-beyond-file',
    PCAP_HEADER + PCAP_RECORD,
    1,
  );

  const beyond = pcap(2, { bigEndian: true });
  beyond.writeUInt32BE(1000, PCAP_HEADER + PCAP_RECORD + 8);
  add('record-length-beyond-file-be.pcap', beyond, 'record-beyond-file', PCAP_HEADER + PCAP_RECORD, 1);

  const huge = pcap(2, { nanosecond: true });
  huge.writeUInt32LE(0x7fffffff, PCAP_HEADER + 8);
  add('record-too-large.pcap', huge, 'record-too-large', PCAP_HEADER, 0);

  const byteOrder = pcapng(1);
  byteOrder.writeUInt32LE(0x12345678, 8);
  add('bad-byte-order.pcapng', byteOrder, 'bad-magic', 8);

  const shbVersion = pcapng(1);
  shbVersion.writeUInt16LE(2, 12);
  add('version-2.pcapng', shbVersion, 'unsupported-version', 12);

  const mismatch = pcapng(3);
  mismatch.writeUInt32LE(EPB + 4, SHB + IDB + 2 * EPB + EPB - 4);
  add('trailing-length-mismatch.pcapng', mismatch, 'block-length-mismatch', SHB + IDB + 2 * EPB, 2);

  const odd = pcapng(2);
  odd.writeUInt32LE(EPB - 2, SHB + IDB + EPB + 4);
  add('block-length-not-multiple-of-4.pcapng', odd, 'bad-block-length', SHB + IDB + EPB, 1);

  add('cut-block.pcapng', pcapng(2).subarray(0, SHB + IDB + EPB + 40), 'record-beyond-file', SHB + IDB + EPB, 1);
  add('cut-block-header.pcapng', pcapng(2).subarray(0, SHB + IDB + EPB + 5), 'truncated-record', SHB + IDB + EPB, 1);

  const noInterface = pcapng(2);
  noInterface.writeUInt32LE(3, SHB + IDB + EPB + 8);
  add('undeclared-interface.pcapng', noInterface, 'unknown-interface', SHB + IDB + EPB, 1);

  add('raw-ip-interface.pcapng', pcapng(1, 101), 'unknown-link-type', SHB + IDB);

  const option = pcapng(1);
  // The IDB's if_tsresol option claims 200 bytes.
  option.writeUInt16LE(200, SHB + 16 + 2);
  add('option-overruns-block.pcapng', option, 'bad-option', SHB + 16);

  // if_tsoffset 2^62 s: the interface's packets would land 146 billion years out (replay used to loop forever).
  const offset = pcapng(1);
  add(
    'tsoffset-2-62.pcapng',
    Buffer.concat([offset.subarray(0, SHB), idbWithOffset(2n ** 62n), offset.subarray(SHB + IDB)]),
    'timestamp-out-of-range',
    SHB + IDB_WITH_OFFSET,
  );

  // Second packet at 2^40 + 2^32 s, in 1-second units (if_tsresol 0).
  const late = pcapng(2);
  late[SHB + 16 + 4] = 0;
  for (const [i, high, low] of [
    [0, 0, 1700000000],
    [1, 0x101, 0],
  ]) {
    late.writeUInt32LE(high, SHB + IDB + i * EPB + 12);
    late.writeUInt32LE(low, SHB + IDB + i * EPB + 16);
  }
  add('timestamp-beyond-2-40.pcapng', late, 'timestamp-out-of-range', SHB + IDB + EPB, 1);

  return entries;
}

// IDB: 16 + if_tsresol (8) + if_tsoffset (4 + 8) + end (4) + 4.
const IDB_WITH_OFFSET = 44;

/** An Ethernet interface in ns with an if_tsoffset of `seconds` (little-endian). */
function idbWithOffset(seconds: bigint): Buffer {
  const idb = Buffer.alloc(IDB_WITH_OFFSET);
  idb.writeUInt32LE(1, 0);
  idb.writeUInt32LE(IDB_WITH_OFFSET, 4);
  idb.writeUInt16LE(1, 8);
  idb.writeUInt16LE(9, 16);
  idb.writeUInt16LE(1, 18);
  idb[20] = 9;
  idb.writeUInt16LE(14, 24);
  idb.writeUInt16LE(8, 26);
  idb.writeBigInt64LE(seconds, 28);
  idb.writeUInt32LE(IDB_WITH_OFFSET, IDB_WITH_OFFSET - 4);
  return idb;
}
