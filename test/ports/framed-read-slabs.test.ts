import { once } from 'node:events';
import net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FramedSocket, type ChunkSink } from '../../proxy/ports/framed-socket.js';
import type { FramingRejectReason } from '../../proxy/port.js';
import { READ_BYTES, ReadSlabs, SLAB_BYTES, SlabReader } from '../../proxy/ports/read-slabs.js';
import { parseSocketAddress } from '../../proxy/ports/socket-address.js';
import { frameOf, Peer, portOf, until, withTimeout } from './support.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Simulates one read of `bytes` into the reader's next region; returns the chunk a socket would decode. */
function read(reader: SlabReader, bytes: Buffer): Buffer {
  const region = reader.next();
  bytes.copy(region, 0, 0, Math.min(bytes.length, region.length));
  return reader.chunk(region, Math.min(bytes.length, region.length));
}

describe('ReadSlabs: reuse only after every frame of a slab is done', () => {
  it('a retired slab with a live frame is not read into; once the frame is done it is reused', () => {
    const slabs = new ReadSlabs();
    const reader = new SlabReader(slabs);
    const first = read(reader, Buffer.alloc(READ_BYTES, 1));
    const held = first.subarray(100, 200);
    reader.track(held);
    // Fill the rest of the first slab and move on to a second: the first is retired with a live frame.
    for (let i = 1; i <= SLAB_BYTES / READ_BYTES; i++) read(reader, Buffer.alloc(READ_BYTES, 2));
    // Fill the second and move on again: the second (no live frame) is reused, the first is not.
    for (let i = 0; i < SLAB_BYTES / READ_BYTES; i++) {
      const chunk = read(reader, Buffer.alloc(READ_BYTES, 3));
      expect(chunk.buffer).not.toBe(held.buffer);
    }
    expect(slabs.counters.allocated).toBe(2);
    expect(slabs.counters.reused).toBe(1);
    expect(held.every((b) => b === 1)).toBe(true);

    slabs.done(held);
    expect(slabs.freeSlabs).toBe(1);
    // The next slab handed out (here to another connection) is the first slab's memory.
    expect(new SlabReader(slabs).next().buffer).toBe(held.buffer);
    expect(slabs.counters.allocated).toBe(2);
  });

  it('done() for frames that are not slab views (assembled across reads, tests) is ignored', () => {
    const slabs = new ReadSlabs();
    slabs.done(Buffer.from('not from a slab'));
    slabs.done(Buffer.allocUnsafeSlow(SLAB_BYTES));
    expect(slabs.freeSlabs).toBe(0);
  });

  it('property: a frame not yet reported done keeps its bytes whatever is read after it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ size: fc.integer({ min: 1, max: READ_BYTES }), keep: fc.boolean(), free: fc.nat(4) }), {
          minLength: 1,
          maxLength: 40,
        }),
        (reads) => {
          const slabs = new ReadSlabs();
          const reader = new SlabReader(slabs);
          const live: { frame: Buffer; copy: Buffer }[] = [];
          let fillByte = 0;
          for (const r of reads) {
            fillByte = (fillByte + 1) & 255;
            const chunk = read(reader, Buffer.alloc(r.size, fillByte));
            if (r.keep) {
              const frame = chunk.subarray(0, Math.min(chunk.length, 64));
              reader.track(frame);
              live.push({ frame, copy: Buffer.from(frame) });
            }
            // Report some of the live frames done, oldest first.
            for (const done of live.splice(0, Math.min(r.free, live.length))) slabs.done(done.frame);
            for (const l of live) expect(l.frame.equals(l.copy)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** Keeps frame views (no copy) and reports each done after checking it, like the compare loop. */
class ViewSink implements ChunkSink {
  readonly texts: string[] = [];
  readonly backings = new Set<number>();
  constructor(private readonly slabs: ReadSlabs | null) {}
  onFrame(frame: Buffer): void {
    this.backings.add(frame.buffer.byteLength);
    this.texts.push(frame.subarray(0, 12).toString('latin1'));
    this.slabs?.done(frame);
  }
  onReject(reason: FramingRejectReason): void {
    throw new Error(`unexpected reject ${reason}`);
  }
  onChunkEnd(): void {}
}

/** `count` frames of `size` bytes, each starting with its 12-digit index. */
function numbered(count: number, size: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const body = Buffer.alloc(size, 0x5a);
    body.write(String(i).padStart(12, '0'), 0, 'latin1');
    frames.push(frameOf(body));
  }
  return Buffer.concat(frames);
}

const expectedTexts = (count: number): string[] => Array.from({ length: count }, (_, i) => String(i).padStart(12, '0'));

describe('FramedSocket reads into slabs and decodes in place', () => {
  it('an accepted connection: frames are slab views, and reported-done slabs are read into again', async () => {
    const slabs = new ReadSlabs();
    const sink = new ViewSink(slabs);
    const port = new FramedSocket({
      name: 'in',
      address: parseSocketAddress('--test', 'listen:127.0.0.1:0'),
      vnetHdr: false,
      sink,
      readSlabs: slabs,
    });
    await port.start();
    cleanup.push(() => port.close());
    const connected = once(port, 'connect');
    const peer = await Peer.connect({ host: '127.0.0.1', port: portOf(port.describe()) });
    cleanup.push(() => peer.close());
    await withTimeout(connected, 5000, 'for the port to adopt the peer');
    // 8 MiB: 32 slabs' worth of reads.
    const count = 5600;
    await peer.write(numbered(count, 1500));
    await until(() => sink.texts.length === count, 15_000, 'for every frame');
    expect(sink.texts).toEqual(expectedTexts(count));
    // Nearly every frame lies within one read: a view of a slab (the few cut by a read boundary are copies).
    expect(sink.backings.has(SLAB_BYTES)).toBe(true);
    expect(slabs.counters.reused).toBeGreaterThan(20);
    expect(slabs.counters.allocated).toBeLessThanOrEqual(3);
    // The accepted connection moved to a socket of our own: the server still closes (its count is right).
    await withTimeout(port.close(), 5000, 'for the listener to close');
  });

  it('a dialled connection reads into slabs too', async () => {
    const body = numbered(200, 1000);
    const server = net.createServer((s) => s.end(body));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const sink = new ViewSink(null);
    const port = new FramedSocket({
      name: 'out',
      address: parseSocketAddress('--test', `connect:127.0.0.1:${(server.address() as net.AddressInfo).port}`),
      vnetHdr: false,
      sink,
    });
    cleanup.push(() => port.close());
    await port.start();
    await until(() => sink.texts.length >= 200, 10_000, 'for every frame');
    expect(sink.texts.slice(0, 200)).toEqual(expectedTexts(200));
    expect(sink.backings.has(SLAB_BYTES)).toBe(true);
  });
});
