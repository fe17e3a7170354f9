import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameBatch, FrameDecoder, MAX_FRAME_LENGTH } from '../../proxy/ports/framed.js';
import { CollectingSink, frameOf, lengthOnly } from './support.js';

function decodeAll(vnetHdr: boolean, chunks: Buffer[]): CollectingSink {
  const sink = new CollectingSink();
  const decoder = new FrameDecoder(vnetHdr, sink);
  for (const chunk of chunks) decoder.push(chunk);
  return sink;
}

describe('FrameDecoder: the QEMU chardev framing', () => {
  it('decodes u32 BE length + bytes without vnet support', () => {
    const sink = decodeAll(false, [Buffer.concat([frameOf('hello'), frameOf('world!')])]);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['hello', 'world!']);
    expect(sink.frames.map((f) => f.start)).toEqual([0, 0]);
    expect(sink.rejects).toEqual([]);
  });

  it('with vnet support reads the vnet_hdr_len field and keeps the vnet header inside the frame', () => {
    const vnet = Buffer.alloc(10, 0xaa);
    const body = Buffer.concat([vnet, Buffer.from('ethernet')]);
    const sink = decodeAll(true, [frameOf(body, 10)]);
    expect(sink.frames).toHaveLength(1);
    expect(sink.frames[0].frame.equals(body)).toBe(true);
    expect(sink.frames[0].start).toBe(10);
  });

  it('hands out a frame lying inside one chunk as a view of that chunk (no copy)', () => {
    const chunk = Buffer.concat([frameOf('abc'), frameOf('defg')]);
    const seen: Buffer[] = [];
    const decoder = new FrameDecoder(false, { onFrame: (frame) => seen.push(frame), onReject: () => {} });
    decoder.push(chunk);
    expect(seen.map((b) => b.buffer === chunk.buffer)).toEqual([true, true]);
    expect(seen[1].byteOffset).toBe(chunk.byteOffset + 4 + 3 + 4);
  });

  it('assembles a frame split across chunks, header split included', () => {
    const stream = Buffer.concat([frameOf('0123456789'), frameOf('xy')]);
    const chunks = [stream.subarray(0, 2), stream.subarray(2, 7), stream.subarray(7, 16), stream.subarray(16)];
    const sink = decodeAll(false, chunks);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['0123456789', 'xy']);
  });

  it('accepts exactly 69632 bytes and closes on 69633 (oversized), deciding at the header', () => {
    const ok = decodeAll(false, [frameOf(Buffer.alloc(MAX_FRAME_LENGTH, 1))]);
    expect(ok.frames).toHaveLength(1);
    expect(ok.frames[0].frame.length).toBe(69632);

    const sink = new CollectingSink();
    const decoder = new FrameDecoder(false, sink);
    expect(decoder.push(lengthOnly(MAX_FRAME_LENGTH + 1))).toBe('close');
    expect(sink.rejects).toEqual([{ reason: 'oversized', length: 69633 }]);
    // Closed: nothing after it is trusted until the connection is replaced (reset()).
    expect(decoder.push(frameOf('after'))).toBe('close');
    expect(sink.frames).toEqual([]);
    decoder.reset();
    expect(decoder.push(frameOf('fresh'))).toBe('ok');
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['fresh']);
  });

  it('skips a zero-length frame (its header alone), counts it, and stays in step: without vnet', () => {
    const sink = decodeAll(false, [Buffer.concat([frameOf('a'), lengthOnly(0), frameOf('b')])]);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['a', 'b']);
    expect(sink.rejects).toEqual([{ reason: 'zero-length', length: 0 }]);
  });

  it('skips a zero-length frame with the vnet field (8-byte header) and stays in step', () => {
    const sink = decodeAll(true, [Buffer.concat([frameOf('a', 0), lengthOnly(0, 0), frameOf('b', 0)])]);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['a', 'b']);
    expect(sink.rejects.map((r) => r.reason)).toEqual(['zero-length']);
  });

  it('skips a frame whose vnet_hdr_len exceeds its length (vnet-length) and decodes the next one', () => {
    const bad = frameOf('short', 6);
    const stream = Buffer.concat([bad, frameOf('next', 0)]);
    // Cut inside the skipped body to exercise the skip across chunks.
    const sink = decodeAll(true, [stream.subarray(0, 10), stream.subarray(10)]);
    expect(sink.rejects).toEqual([{ reason: 'vnet-length', length: 5 }]);
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['next']);
  });

  it('end() inside a header or a body rejects the partial frame as truncated; at a boundary it is silent', () => {
    const sink = new CollectingSink();
    const decoder = new FrameDecoder(false, sink);
    decoder.push(frameOf('whole'));
    decoder.end();
    expect(sink.rejects).toEqual([]);

    decoder.push(frameOf('0123456789').subarray(0, 9)); // header + 5 of 10 bytes
    expect(decoder.pendingBytes).toBe(9);
    decoder.end();
    expect(sink.rejects).toEqual([{ reason: 'truncated', length: 9 }]);

    decoder.push(Buffer.from([0, 0])); // half a length prefix
    decoder.end();
    expect(sink.rejects[1]).toEqual({ reason: 'truncated', length: 2 });
    // And the decoder is fresh afterwards.
    decoder.push(frameOf('again'));
    expect(sink.frames.map((f) => f.frame.toString())).toEqual(['whole', 'again']);
  });

  it('property: any chunking of a valid stream yields the same frames', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat({ max: 400 }), { maxLength: 30 }),
        (vnetHdr, payloads, cuts) => {
          const frames = payloads.map((p, i) => {
            const body = Buffer.from(p);
            return { body, vnet: vnetHdr ? i % Math.min(body.length + 1, 13) : 0 };
          });
          const stream = Buffer.concat(frames.map((f) => encodeFrame(f.body, vnetHdr, f.vnet)));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let last = 0;
          for (const point of [...points, stream.length]) {
            chunks.push(stream.subarray(last, point));
            last = point;
          }
          const sink = decodeAll(vnetHdr, chunks);
          expect(sink.rejects).toEqual([]);
          expect(sink.frames.map((f) => f.frame.toString('hex'))).toEqual(frames.map((f) => f.body.toString('hex')));
          expect(sink.frames.map((f) => f.start)).toEqual(frames.map((f) => f.vnet));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: random bytes never throw, and every frame handed out is within bounds', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (vnetHdr, chunks) => {
        const sink = new CollectingSink();
        const decoder = new FrameDecoder(vnetHdr, sink);
        for (const chunk of chunks) {
          if (decoder.push(Buffer.from(chunk)) === 'close') decoder.reset();
        }
        decoder.end();
        for (const f of sink.frames) {
          expect(f.frame.length).toBeGreaterThan(0);
          expect(f.frame.length).toBeLessThanOrEqual(MAX_FRAME_LENGTH);
          expect(f.start).toBeLessThanOrEqual(f.frame.length);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('FrameBatch: batched framed output', () => {
  it('round-trips through the decoder, vnet lengths included, and take() empties it', () => {
    const batch = new FrameBatch(true);
    batch.append(Buffer.from('0123abcd'), 4);
    batch.append(Buffer.from('xyz'), 0);
    expect(batch.frames).toBe(2);
    const out = batch.take();
    expect(out).not.toBeNull();
    expect(batch.take()).toBeNull();
    const sink = decodeAll(true, [out as Buffer]);
    expect(sink.frames).toEqual([
      { frame: Buffer.from('0123abcd'), start: 4 },
      { frame: Buffer.from('xyz'), start: 0 },
    ]);
  });

  it('recycle() reuses the slab from its start, and only once everything appended was taken', () => {
    const batch = new FrameBatch(false);
    batch.append(Buffer.from('first'), 0);
    const first = batch.take() as Buffer;
    batch.append(Buffer.from('pending'), 0);
    batch.recycle(); // not everything taken: must not move
    const second = batch.take() as Buffer;
    expect(second.byteOffset).toBe(first.byteOffset + first.length);
    batch.recycle(); // all taken (the caller knows the socket let go of it): start again at the slab's start
    batch.append(Buffer.from('third'), 0);
    const third = batch.take() as Buffer;
    expect(third.buffer).toBe(first.buffer);
    expect(third.byteOffset).toBe(first.byteOffset);
    expect(decodeAll(false, [third]).frames.map((f) => f.frame.toString())).toEqual(['third']);
  });

  it('never overwrites a region already taken, even when the slab grows', () => {
    const batch = new FrameBatch(false);
    const first = Buffer.alloc(1000, 7);
    batch.append(first, 0);
    const taken = batch.take() as Buffer;
    const copy = Buffer.from(taken);
    // Enough to outgrow the first slab several times over.
    for (let i = 0; i < 20; i++) batch.append(Buffer.alloc(60_000, i), 0);
    const rest = batch.take() as Buffer;
    expect(taken.equals(copy)).toBe(true);
    const sink = decodeAll(false, [rest]);
    expect(sink.frames).toHaveLength(20);
    expect(sink.frames[19].frame[0]).toBe(19);
  });
});
