/**
 * Mutated capture pairs for the replay campaign, from the example captures: random byte flips, truncation,
 * a record's timestamp set far in the future (or back), lying record lengths, and the pair rewritten as one
 * pcapng with hostile interface options (if_tsoffset up to ±2^63, odd if_tsresol).
 */
import type { Rng } from './rng.js';

export type CaptureMutation = 'flip' | 'truncate' | 'huge-timestamp' | 'backwards' | 'record-length' | 'pcapng';

/** Files for one replay: two pcaps, or one pcapng whose interfaces 0 and 1 are the primary and the secondary. */
export type CaptureCase =
  | { kind: 'pcap'; primary: Buffer; secondary: Buffer; mutations: CaptureMutation[] }
  | { kind: 'pcapng'; file: Buffer; mutations: CaptureMutation[] };

interface PcapRecord {
  seconds: number;
  fraction: number;
  data: Buffer;
}

const PCAP_HEADER = 24;
const RECORD_HEADER = 16;

/** Record headers' offsets in a little- or big-endian pcap (stops at the first one that does not fit). */
function recordOffsets(pcap: Buffer): { offsets: number[]; le: boolean } {
  const le = pcap.length >= 4 && pcap.readUInt32LE(0) >>> 16 === 0xa1b2;
  const offsets: number[] = [];
  let at = PCAP_HEADER;
  while (at + RECORD_HEADER <= pcap.length) {
    offsets.push(at);
    const length = le ? pcap.readUInt32LE(at + 8) : pcap.readUInt32BE(at + 8);
    at += RECORD_HEADER + length;
  }
  return { offsets, le };
}

function records(pcap: Buffer): PcapRecord[] {
  const { offsets, le } = recordOffsets(pcap);
  return offsets.map((at) => {
    const read = (o: number): number => (le ? pcap.readUInt32LE(at + o) : pcap.readUInt32BE(at + o));
    return {
      seconds: read(0),
      fraction: read(4),
      data: pcap.subarray(at + RECORD_HEADER, at + RECORD_HEADER + read(8)),
    };
  });
}

export class CaptureMutator {
  constructor(
    private readonly rng: Rng,
    private readonly pairs: ReadonlyArray<{ primary: Buffer; secondary: Buffer }>,
  ) {}

  next(): CaptureCase {
    const rng = this.rng;
    const pair = rng.pick(this.pairs);
    let primary: Buffer = Buffer.from(pair.primary);
    let secondary: Buffer = Buffer.from(pair.secondary);
    const mutations: CaptureMutation[] = [];
    const count = rng.between(1, 3);
    for (let i = 0; i < count; i++) {
      const mutation = rng.pick<CaptureMutation>([
        'flip',
        'truncate',
        'huge-timestamp',
        'backwards',
        'record-length',
        'pcapng',
      ]);
      if (mutation === 'pcapng') continue;
      mutations.push(mutation);
      if (rng.chance(0.5)) primary = this.mutate(primary, mutation);
      else secondary = this.mutate(secondary, mutation);
    }
    if (mutations.length === 0 || rng.chance(0.25)) {
      mutations.push('pcapng');
      return { kind: 'pcapng', file: this.pcapng(primary, secondary), mutations };
    }
    return { kind: 'pcap', primary, secondary, mutations };
  }

  private mutate(pcap: Buffer, mutation: CaptureMutation): Buffer {
    const rng = this.rng;
    const { offsets, le } = recordOffsets(pcap);
    const record = offsets.length > 0 ? rng.pick(offsets) : -1;
    const write = (value: number, at: number): void => {
      if (le) pcap.writeUInt32LE(value >>> 0, at);
      else pcap.writeUInt32BE(value >>> 0, at);
    };
    switch (mutation) {
      case 'flip': {
        const n = rng.between(1, 20);
        for (let i = 0; i < n; i++) pcap[rng.below(pcap.length)] ^= 1 << rng.below(8);
        return pcap;
      }
      case 'truncate':
        return pcap.subarray(0, rng.below(pcap.length));
      case 'huge-timestamp':
        if (record >= 0) write(rng.pick([0xffffffff, 0x80000000, rng.u32()]), record);
        if (record >= 0 && rng.chance(0.3)) write(rng.pick([0xffffffff, 999_999_999, 1_000_000]), record + 4);
        return pcap;
      case 'backwards':
        if (record >= 0) write(rng.pick([0, 1, rng.below(1_000_000_000)]), record);
        return pcap;
      case 'record-length':
        if (record >= 0) write(rng.pick([0, 1, 65535, 262145, 0xffffffff, rng.u32()]), record + rng.pick([8, 12]));
        return pcap;
      case 'pcapng':
        return pcap;
    }
  }

  /** One pcapng: a section header, an interface per side (with hostile options), an EPB per record. */
  private pcapng(primary: Buffer, secondary: Buffer): Buffer {
    const rng = this.rng;
    const blocks: Buffer[] = [block(0x0a0d0d0a, shbBody())];
    for (let i = 0; i < 2; i++) blocks.push(block(0x00000001, idbBody(this.interfaceOptions())));
    const sides = [records(primary), records(secondary)];
    // Merge by time order of the originals, as one capture of two interfaces would hold them.
    const merged = sides.flatMap((list, iface) => list.map((r) => ({ ...r, iface })));
    merged.sort((a, b) => a.seconds - b.seconds || a.fraction - b.fraction);
    for (const r of merged) blocks.push(block(0x00000006, epbBody(r)));
    const file = Buffer.concat(blocks);
    if (rng.chance(0.3)) {
      const n = rng.between(1, 10);
      for (let i = 0; i < n; i++) file[rng.below(file.length)] ^= 1 << rng.below(8);
    }
    return rng.chance(0.1) ? file.subarray(0, rng.below(file.length)) : file;
  }

  private interfaceOptions(): Buffer[] {
    const rng = this.rng;
    const options: Buffer[] = [];
    if (rng.chance(0.7)) {
      const offset = Buffer.alloc(8);
      const value = rng.pick([
        2n ** 62n,
        -(2n ** 62n),
        2n ** 40n,
        2n ** 63n - 1n,
        -(2n ** 63n),
        1n,
        BigInt(rng.u32()) << 24n,
      ]);
      offset.writeBigInt64LE(value);
      options.push(option(14, offset));
    }
    if (rng.chance(0.3)) options.push(option(9, Buffer.from([rng.pick([0, 3, 6, 9, 19, 0x80, 0x80 | 63, 255])])));
    return options;
  }
}

function option(code: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  out.writeUInt16LE(code, 0);
  out.writeUInt16LE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function block(type: number, body: Buffer): Buffer {
  const length = 12 + body.length;
  const out = Buffer.alloc(length);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(length, 4);
  body.copy(out, 8);
  out.writeUInt32LE(length, length - 4);
  return out;
}

function shbBody(): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt32LE(0x1a2b3c4d, 0);
  body.writeUInt16LE(1, 4);
  body.writeUInt16LE(0, 6);
  body.writeBigInt64LE(-1n, 8);
  return body;
}

function idbBody(options: Buffer[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(1, 0);
  head.writeUInt32LE(262144, 4);
  return Buffer.concat([head, ...options, options.length > 0 ? Buffer.alloc(4) : Buffer.alloc(0)]);
}

/** Microsecond timestamps (the default resolution) from a pcap record's seconds and fraction. */
function epbBody(r: PcapRecord & { iface: number }): Buffer {
  const ts = BigInt(r.seconds) * 1_000_000n + BigInt(r.fraction);
  const padded = Math.ceil(r.data.length / 4) * 4;
  const body = Buffer.alloc(20 + padded);
  body.writeUInt32LE(r.iface, 0);
  body.writeUInt32LE(Number((ts >> 32n) & 0xffffffffn), 4);
  body.writeUInt32LE(Number(ts & 0xffffffffn), 8);
  body.writeUInt32LE(r.data.length, 12);
  body.writeUInt32LE(r.data.length, 16);
  r.data.copy(body, 20);
  return body;
}
