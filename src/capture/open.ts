import { ByteInput, DEFAULT_CHUNK_SIZE } from './input.js';
import { BlockType } from './pcapng-format.js';
import { PcapngReader } from './pcapng-reader.js';
import { PcapReader } from './pcap.js';
import type { CaptureReader } from './record.js';

export interface OpenCaptureOptions {
  /** pcapng: only this interface index. Ignored for pcap (one interface). */
  interfaceFilter?: number | null;
  chunkSize?: number;
}

/**
 * A reader for a pcap or pcapng capture, chosen by its magic number. Never throws for bad content: a
 * file that is neither comes back as a reader whose `error` is already set (bad-magic, truncated-header).
 * Opening a missing file does throw (ENOENT): that is an edge error, not bad content.
 */
export function openCaptureFile(path: string, options: OpenCaptureOptions = {}): CaptureReader {
  return readerFor(ByteInput.fromFile(path, options.chunkSize ?? DEFAULT_CHUNK_SIZE), options);
}

export function openCaptureBuffer(buf: Buffer, name = '<buffer>', options: OpenCaptureOptions = {}): CaptureReader {
  return readerFor(ByteInput.fromBuffer(buf, name), options);
}

function readerFor(input: ByteInput, options: OpenCaptureOptions): CaptureReader {
  if (input.ensure(0, 4) && input.buf.readUInt32LE(0) === BlockType.SECTION_HEADER) {
    return new PcapngReader(input, { interfaceFilter: options.interfaceFilter ?? null });
  }
  return new PcapReader(input);
}

/** A record copied out of a reader (tests, tools): owns its bytes. */
export interface CapturedFrame {
  interfaceId: number;
  seconds: number;
  nanoseconds: number;
  data: Buffer;
  originalLength: number;
  comment: string | null;
}

/** Reads every record; the error (if any) comes back alongside what was read before it. */
export function readAll(reader: CaptureReader): { frames: CapturedFrame[]; error: CaptureReader['error'] } {
  const frames: CapturedFrame[] = [];
  const r = reader.record;
  while (reader.next()) {
    frames.push({
      interfaceId: r.interfaceId,
      seconds: r.seconds,
      nanoseconds: r.nanoseconds,
      data: Buffer.from(r.data),
      originalLength: r.originalLength,
      comment: r.comment,
    });
  }
  reader.close();
  return { frames, error: reader.error };
}
