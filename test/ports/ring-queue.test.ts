import { constants } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import type { FramingRejectReason } from '../../proxy/port.js';
import { RingPort } from '../../proxy/ports/ring.js';
import { SendBatchResult, type NativePacketRing, type PacketRingClass } from '../../proxy/ports/packet-ring.js';

const { EAGAIN, ENOBUFS, EMSGSIZE } = constants.errno;

/**
 * The ring port's send queue and batch delivery against a scripted stand-in for the addon: the kernel's
 * answers (room for n frames, EAGAIN, ENOBUFS, a frame refused for good) are chosen per call.
 */
class FakeRing implements NativePacketRing {
  static last: FakeRing;
  /** Per sendBatch call: how many frames the kernel takes and how it stops. Empty: takes everything. */
  script: { take: number; blocked?: number; failAt?: number }[] = [];
  wire: Buffer[] = [];
  batches = 0;
  watching = false;
  closed = false;

  constructor(
    _iface: string,
    _frameSize: number,
    _frameCount: number,
    _bypass: boolean,
    _sndbuf: number,
    readonly meta: Int32Array,
    readonly onBatch: (buffer: Buffer, entries: number, drops: number) => void,
    readonly onWritable: () => void,
  ) {
    FakeRing.last = this;
  }

  sendBatch(buffer: Buffer, meta: Int32Array, first: number, count: number, result: Float64Array): number {
    this.batches++;
    const step = this.script.shift() ?? { take: count };
    const take = Math.min(step.take, count);
    let bytes = 0;
    let failed = 0;
    for (let i = 0; i < take; i++) {
      const [offset, length] = [meta[2 * (first + i)], meta[2 * (first + i) + 1]];
      if (step.failAt === i) {
        failed++;
        continue;
      }
      this.wire.push(Buffer.from(buffer.subarray(offset, offset + length)));
      bytes += length;
    }
    result[SendBatchResult.DONE] = take;
    result[SendBatchResult.FAILED] = failed;
    result[SendBatchResult.BLOCKED_ERRNO] = take < count ? (step.blocked ?? EAGAIN) : 0;
    result[SendBatchResult.FAILED_ERRNO] = failed ? EMSGSIZE : 0;
    result[SendBatchResult.BYTES] = bytes;
    return take;
  }

  sendOne(): number {
    return 0;
  }

  watchWritable(): void {
    this.watching = true;
  }

  stats() {
    return {
      kernelPackets: 0,
      kernelDrops: 0,
      outgoingSkipped: 0,
      frameSize: 2048,
      frameCount: 64,
      qdiscBypass: 1,
      ignoreOutgoing: 1,
    };
  }

  close(): void {
    this.closed = true;
  }

  /** The addon's receive side: frames copied into one buffer, (offset, length) pairs in meta. */
  deliver(frames: (Buffer | { truncated: number })[], drops = 0): void {
    const chunks: Buffer[] = [];
    let offset = 0;
    frames.forEach((f, i) => {
      if (Buffer.isBuffer(f)) {
        this.meta[2 * i] = offset;
        this.meta[2 * i + 1] = f.length;
        chunks.push(f);
        offset += f.length;
      } else {
        this.meta[2 * i] = -1;
        this.meta[2 * i + 1] = f.truncated;
      }
    });
    this.onBatch(Buffer.concat(chunks), frames.length, drops);
  }
}

const frame = (i: number, size = 64): Buffer => {
  const f = Buffer.alloc(size, i & 0xff);
  f.writeUInt32BE(i, 0);
  return f;
};

function port(options: { txQueueFrames?: number } = {}) {
  const received: Buffer[] = [];
  const rejects: [FramingRejectReason, number][] = [];
  const p = new RingPort({
    name: 'test',
    iface: 'fake0',
    ringClass: FakeRing as unknown as PacketRingClass,
    sink: { onFrame: (f) => received.push(f), onReject: (reason, length) => rejects.push([reason, length]) },
    ...options,
  });
  return { p, ring: FakeRing.last, received, rejects };
}

const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ring port send queue', () => {
  it('sends everything queued in one turn as one batch, in order', async () => {
    const { p, ring } = port();
    for (let i = 0; i < 100; i++) expect(p.send(frame(i))).toBe(true);
    expect(ring.batches).toBe(0);
    await microtasks();
    expect(ring.batches).toBe(1);
    expect(ring.wire.map((f) => f.readUInt32BE(0))).toEqual([...Array(100).keys()]);
    expect(p.counters).toMatchObject({ framesOut: 100, bytesOut: 6400, batchesOut: 1, sendQueued: 0 });
  });

  it('copies the frame at send(): patching it afterwards does not change what goes out', async () => {
    const { p, ring } = port();
    const f = frame(7);
    p.send(f, 0);
    f.fill(0);
    await microtasks();
    expect(ring.wire[0].equals(frame(7))).toBe(true);
  });

  it('on EAGAIN keeps the rest queued, waits for writable, then sends it in order', async () => {
    const { p, ring } = port();
    ring.script = [{ take: 30 }];
    for (let i = 0; i < 100; i++) p.send(frame(i));
    await microtasks();
    expect(ring.wire).toHaveLength(30);
    expect(ring.watching).toBe(true);
    expect(p.counters).toMatchObject({ sendBlocked: 1, sendQueued: 70 });
    // Frames sent while blocked join the queue behind the waiting ones.
    p.send(frame(100));
    await microtasks();
    expect(ring.batches).toBe(1);
    ring.onWritable();
    expect(ring.wire.map((f) => f.readUInt32BE(0))).toEqual([...Array(101).keys()]);
    expect(p.counters).toMatchObject({ framesOut: 101, sendQueued: 0, sendRefused: 0 });
    expect(p.lastBlockedErrno).toBe(EAGAIN);
  });

  it('on ENOBUFS retries on a timer (no writable event for a device queue)', async () => {
    const { p, ring } = port();
    ring.script = [{ take: 1, blocked: ENOBUFS }];
    p.send(frame(0));
    p.send(frame(1));
    // Only the flush microtask queued by send() runs first: a 1 ms retry timer cannot fire before this check,
    // however slow the machine (a setImmediate here could come after it).
    await Promise.resolve();
    expect(ring.wire).toHaveLength(1);
    expect(ring.watching).toBe(false);
    await vi.waitFor(() => expect(ring.wire).toHaveLength(2), { timeout: 2000, interval: 1 });
    expect(ring.wire.map((f) => f.readUInt32BE(0))).toEqual([0, 1]);
    expect(p.lastBlockedErrno).toBe(ENOBUFS);
  });

  it('when the queue is full while blocked, send() returns false and counts it', async () => {
    const { p, ring } = port({ txQueueFrames: 8 });
    ring.script = [{ take: 0 }];
    const accepted = Array.from({ length: 20 }, (_, i) => p.send(frame(i)));
    expect(accepted.filter(Boolean)).toHaveLength(8);
    expect(p.counters).toMatchObject({ sendRefused: 12, sendQueued: 8 });
    await microtasks();
    ring.onWritable();
    expect(ring.wire.map((f) => f.readUInt32BE(0))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a full queue that the kernel can take is flushed at once and compacted, not refused', () => {
    const { p, ring } = port({ txQueueFrames: 8 });
    ring.script = [{ take: 5 }];
    for (let i = 0; i < 8; i++) p.send(frame(i));
    // The 9th finds the queue full: it flushes (5 go), moves the 3 waiting to the front, and queues.
    expect(p.send(frame(8))).toBe(true);
    ring.onWritable();
    expect(ring.wire.map((f) => f.readUInt32BE(0))).toEqual([...Array(9).keys()]);
    expect(p.counters.sendRefused).toBe(0);
  });

  it('a frame the kernel refuses for good is counted as a send error and the rest still go', async () => {
    const { p, ring } = port();
    ring.script = [{ take: 3, failAt: 1 }];
    for (let i = 0; i < 3; i++) p.send(frame(i));
    await microtasks();
    expect(ring.wire.map((f) => f.readUInt32BE(0))).toEqual([0, 2]);
    expect(p.counters).toMatchObject({ framesOut: 2, sendErrors: 1, sendQueued: 0 });
    expect(p.lastSendErrno).toBe(EMSGSIZE);
  });

  it('refuses frames shorter than an Ethernet header (counted)', () => {
    const { p } = port();
    expect(p.send(Buffer.alloc(10))).toBe(false);
    expect(p.counters.sendErrors).toBe(1);
  });

  it('close counts what is still queued, stops the ring, and refuses later sends', async () => {
    const { p, ring } = port();
    ring.script = [{ take: 2 }];
    for (let i = 0; i < 10; i++) p.send(frame(i));
    p.close();
    expect(ring.closed).toBe(true);
    expect(p.counters).toMatchObject({ framesOut: 2, sendDiscardedAtClose: 8 });
    expect(p.send(frame(11))).toBe(false);
    await microtasks();
    expect(ring.batches).toBe(1);
  });
});

describe('ring port receive batches', () => {
  it('hands every frame of a batch to the sink as its own view, truncated ones as rejects', () => {
    const { p, ring, received, rejects } = port();
    ring.deliver([frame(1), { truncated: 4000 }, frame(2, 1514)]);
    expect(received.map((f) => f.length)).toEqual([64, 1514]);
    expect(received[1].equals(frame(2, 1514))).toBe(true);
    expect(rejects).toEqual([['truncated', 4000]]);
    expect(p.counters).toMatchObject({ framesIn: 2, bytesIn: 1578, truncated: 1, batchesIn: 1 });
  });

  it('reports kernel ring drops as a counter and an event', () => {
    const { p, ring } = port();
    const events: number[][] = [];
    p.on('drops', (added: number, total: number) => events.push([added, total]));
    ring.deliver([frame(1)], 5);
    ring.deliver([frame(2)], 7);
    expect(events).toEqual([
      [5, 5],
      [2, 7],
    ]);
    expect(p.counters.kernelDrops).toBe(7);
  });

  it('a sink that closes the port mid-batch gets no further frame', () => {
    const received: number[] = [];
    const p: RingPort = new RingPort({
      name: 'test',
      iface: 'fake0',
      ringClass: FakeRing as unknown as PacketRingClass,
      sink: {
        onFrame: (f) => {
          received.push(f.readUInt32BE(0));
          if (received.length === 2) p.close();
        },
        onReject: () => undefined,
      },
    });
    FakeRing.last.deliver([frame(1), frame(2), frame(3), frame(4)]);
    expect(received).toEqual([1, 2]);
  });
});
