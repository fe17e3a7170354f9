import { describe, expect, it } from 'vitest';
import { buildTcp, buildUdp } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import type { CompareService } from '../../src/dropin/compare-service.js';
import { frameOf, until, withTimeout } from '../ports/support.js';
import { loopbackCompare } from './support.js';

const compare = loopbackCompare();
const service = (notify: boolean) => compare.start(notify ? {} : { notifyDev: null });
const peer = (s: CompareService, name: string) => compare.peer(s, name);

describe('compare loop: ordered output and backpressure (in-process, real loopback sockets)', () => {
  it('a slow outdev pauses both inputs instead of buffering without bound, and order survives', async () => {
    const s = await service(false);
    const out = await peer(s, 'outdev');
    const pri = await peer(s, 'primary-in');
    const sec = await peer(s, 'secondary-in');
    out.socket.pause(); // outdev stops reading

    const count = 16_000; // ~20 MB each way: far beyond the kernel's loopback buffers plus 1 MiB
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const payload = Buffer.alloc(1200, i & 0xff);
      payload.writeUInt32BE(i, 0);
      frames.push(
        frameOf(buildUdp({ src: '10.2.0.1', dst: '10.2.0.2', srcPort: 1000 + (i % 64), dstPort: 9, payload })),
      );
    }
    const priStream = Buffer.concat(frames);
    pri.socket.write(priStream);
    sec.socket.write(priStream);

    await until(() => s.loop.inputsPaused, 10_000, 'for the inputs to be paused');
    expect(s.loop.counters.backpressurePauses).toBeGreaterThan(0);
    const outdev = s.sockets.find((x) => x.name === 'outdev')!;
    // Bounded: what waits in the process is about one read chunk's worth of releases beyond the mark.
    expect(outdev.backlog).toBeLessThan(1024 * 1024 + 256 * 1024);
    const releasedWhilePaused = s.loop.counters.released;
    expect(releasedWhilePaused).toBeLessThan(count);

    out.socket.resume();
    await out.sink.waitFor(count, 30_000);
    const order = out.sink.frames.map((f) => f.frame.readUInt32BE(42));
    expect(order).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(s.loop.inputsPaused).toBe(false);
  });

  it('a TCP stream re-segmented differently on each side is released whole and in order', async () => {
    const s = await service(true);
    const out = await peer(s, 'outdev');
    const pri = await peer(s, 'primary-in');
    const sec = await peer(s, 'secondary-in');
    const data = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
    const seg = (from: number, to: number, isn: number) =>
      buildTcp({
        src: '10.3.0.1',
        dst: '10.3.0.2',
        srcPort: 80,
        dstPort: 40000,
        seq: isn + from,
        ack: 1,
        flags: TcpFlag.ACK | TcpFlag.PSH,
        payload: data.subarray(from, to),
      });
    const primarySegments = [seg(0, 10, 1000), seg(10, 36, 1000)];
    await pri.write(Buffer.concat(primarySegments.map((f) => frameOf(f))));
    // The secondary uses another ISN and cuts the stream elsewhere.
    await sec.write(Buffer.concat([seg(0, 20, 5000), seg(20, 36, 5000)].map((f) => frameOf(f))));
    await withTimeout(out.sink.waitFor(2), 5000, 'for both primary segments');
    expect(out.sink.frames.map((f) => f.frame)).toEqual(primarySegments);
    expect(s.loop.counters.checkpointRequestsSent).toBe(0);
  });
});
