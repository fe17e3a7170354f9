import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openCaptureBuffer, openCaptureFile, readAll } from '../../src/capture/open.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { PcapngWriter } from '../../src/capture/pcapng-writer.js';
import { BufferSink, FileSink } from '../../src/capture/sink.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-roundtrip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Written {
  interfaceId: number;
  seconds: number;
  nanoseconds: number;
  data: Buffer;
  comment: string | null;
}

const frameArb = fc.uint8Array({ minLength: 0, maxLength: 1600 }).map((a) => Buffer.from(a));
const secondsArb = fc.integer({ min: 0, max: 0xffffffff });

function records(nanoArb: fc.Arbitrary<number>, interfaces: number, comments: boolean): fc.Arbitrary<Written[]> {
  return fc.array(
    fc.record({
      interfaceId: fc.integer({ min: 0, max: interfaces - 1 }),
      seconds: secondsArb,
      nanoseconds: nanoArb,
      data: frameArb,
      comment: comments ? fc.option(fc.string({ maxLength: 40 }), { nil: null }) : fc.constant(null),
    }),
    { maxLength: 30 },
  );
}

const micros = fc.integer({ min: 0, max: 999_999 }).map((us) => us * 1000);
const nanos = fc.integer({ min: 0, max: 999_999_999 });

describe('capture writers and readers round-trip (property)', () => {
  for (const nanosecond of [false, true]) {
    for (const bigEndian of [false, true]) {
      it(`pcap ${nanosecond ? 'ns' : 'µs'} ${bigEndian ? 'big' : 'little'}-endian: same frames and timestamps`, () => {
        fc.assert(
          fc.property(records(nanosecond ? nanos : micros, 1, false), (written) => {
            const sink = new BufferSink();
            const writer = new PcapWriter(sink, { nanosecond, bigEndian });
            for (const r of written) writer.write(r.seconds, r.nanoseconds, r.data);
            writer.flush();
            const { frames, error } = readAll(openCaptureBuffer(sink.toBuffer()));
            expect(error).toBeNull();
            expect(frames.map(({ originalLength: _o, ...f }) => f)).toEqual(written);
          }),
          { numRuns: 60 },
        );
      });
    }
  }

  for (const bigEndian of [false, true]) {
    it(`pcapng ${bigEndian ? 'big' : 'little'}-endian, two interfaces (ns and µs), comments`, () => {
      fc.assert(
        fc.property(records(micros, 2, true), (written) => {
          const sink = new BufferSink();
          const writer = new PcapngWriter(sink, { bigEndian });
          writer.addInterface({ name: 'primary' });
          writer.addInterface({ name: 'secondary', tsresol: 6 });
          for (const r of written) {
            writer.writePacket(
              r.interfaceId,
              r.seconds,
              r.nanoseconds,
              r.data,
              r.comment === null ? {} : { comment: r.comment },
            );
          }
          writer.flush();
          const reader = openCaptureBuffer(sink.toBuffer());
          const { frames, error } = readAll(reader);
          expect(error).toBeNull();
          expect(reader.interfaces.map((i) => [i.name, i.unitsPerSecond])).toEqual([
            ['primary', 1e9],
            ['secondary', 1e6],
          ]);
          expect(frames.map(({ originalLength: _o, ...f }) => f)).toEqual(written);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('pcapng nanosecond timestamps survive exactly', () => {
    fc.assert(
      fc.property(records(nanos, 1, false), (written) => {
        const sink = new BufferSink();
        const writer = new PcapngWriter(sink);
        writer.addInterface();
        for (const r of written) writer.writePacket(0, r.seconds, r.nanoseconds, r.data);
        writer.flush();
        const { frames } = readAll(openCaptureBuffer(sink.toBuffer()));
        expect(frames.map((f) => [f.seconds, f.nanoseconds])).toEqual(written.map((r) => [r.seconds, r.nanoseconds]));
      }),
      { numRuns: 60 },
    );
  });

  it('a file streamed in small chunks reads the same as the whole buffer', () => {
    fc.assert(
      fc.property(records(nanos, 1, false), fc.integer({ min: 1, max: 3000 }), (written, chunkSize) => {
        const path = join(dir, 'chunked.pcap');
        const sink = new FileSink(path);
        const writer = new PcapWriter(sink, { nanosecond: true });
        for (const r of written) writer.write(r.seconds, r.nanoseconds, r.data);
        writer.flush();
        sink.close();
        const { frames, error } = readAll(openCaptureFile(path, { chunkSize }));
        expect(error).toBeNull();
        expect(frames.map((f) => [f.seconds, f.nanoseconds, f.data])).toEqual(
          written.map((r) => [r.seconds, r.nanoseconds, r.data]),
        );
      }),
      { numRuns: 40 },
    );
  });

  it('frames held from earlier chunks stay intact after the reader moves on', () => {
    const path = join(dir, 'held.pcap');
    const sink = new FileSink(path);
    const writer = new PcapWriter(sink);
    for (let i = 0; i < 200; i++) writer.write(i, 0, Buffer.alloc(100, i));
    writer.flush();
    sink.close();
    const reader = openCaptureFile(path, { chunkSize: 256 });
    const held: Buffer[] = [];
    // Keep the reader's own subarrays, as the engine does with frames it holds.
    while (reader.next()) held.push(reader.record.data);
    reader.close();
    expect(held.map((b) => b[0])).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(held.every((b, i) => b.equals(Buffer.alloc(100, i)))).toBe(true);
  });

  it('pcapng: several sections number interfaces across sections; SPB takes the previous timestamp', () => {
    const sink = new BufferSink();
    const writer = new PcapngWriter(sink, { bigEndian: true, comment: 'first' });
    writer.addInterface({ name: 'a' });
    writer.writePacket(0, 10, 5, Buffer.from('one'));
    writer.newSection('second');
    writer.addInterface({ name: 'b' });
    writer.addInterface({ name: 'c' });
    writer.writePacket(1, 20, 7, Buffer.from('two'));
    writer.flush();
    // Append a little-endian section with an unknown block and a simple packet block by hand.
    const le = new BufferSink();
    const third = new PcapngWriter(le);
    third.addInterface({ name: 'd', snaplen: 4 });
    third.writePacket(0, 30, 9, Buffer.from('three'));
    third.flush();
    const unknown = Buffer.alloc(16);
    unknown.writeUInt32LE(0x0badf00d, 0);
    unknown.writeUInt32LE(16, 4);
    unknown.writeUInt32LE(16, 12);
    const spb = Buffer.alloc(12 + 8 + 4);
    spb.writeUInt32LE(3, 0);
    spb.writeUInt32LE(24, 4);
    spb.writeUInt32LE(6, 8);
    Buffer.from('simple').copy(spb, 12);
    spb.writeUInt32LE(24, 20);
    const file = Buffer.concat([sink.toBuffer(), le.toBuffer(), unknown, spb]);
    const reader = openCaptureBuffer(file);
    const { frames, error } = readAll(reader);
    expect(error).toBeNull();
    expect(frames.map((f) => [f.interfaceId, f.seconds, f.nanoseconds, f.data.toString()])).toEqual([
      [0, 10, 5, 'one'],
      [2, 20, 7, 'two'],
      [3, 30, 9, 'three'],
      // The SPB is cut to the interface's snaplen (4) and has no timestamp of its own.
      [3, 30, 9, 'simp'],
    ]);
    expect(reader.interfaces.map((i) => [i.index, i.section, i.name])).toEqual([
      [0, 0, 'a'],
      [1, 1, 'b'],
      [2, 1, 'c'],
      [3, 2, 'd'],
    ]);
  });

  it('pcapng interface filter returns only that interface', () => {
    const sink = new BufferSink();
    const writer = new PcapngWriter(sink);
    writer.addInterface();
    writer.addInterface();
    for (let i = 0; i < 10; i++) writer.writePacket(i % 2, i, 0, Buffer.from([i]));
    writer.flush();
    const { frames } = readAll(openCaptureBuffer(sink.toBuffer(), 'x', { interfaceFilter: 1 }));
    expect(frames.map((f) => f.data[0])).toEqual([1, 3, 5, 7, 9]);
  });

  it('pcap snaplen cuts frames and keeps their original length', () => {
    const sink = new BufferSink();
    const writer = new PcapWriter(sink, { snaplen: 64 });
    writer.write(1, 0, Buffer.alloc(100, 7));
    writer.flush();
    const { frames } = readAll(openCaptureBuffer(sink.toBuffer()));
    expect(frames[0].data).toEqual(Buffer.alloc(64, 7));
    expect(frames[0].originalLength).toBe(100);
  });
});
