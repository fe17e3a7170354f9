// Run inside a network namespace by ring.test.ts: argv = scenario ifaceA ifaceB [count]. Prints one JSON line.
import type { FramingRejectReason } from '../../proxy/port.js';
import { RingPort, type RingPortOptions } from '../../proxy/ports/ring.js';
import { ringClockUs } from '../../proxy/ports/packet-ring.js';

const [scenario, ifaceA, ifaceB, countText] = process.argv.slice(2);
const count = Number(countText ?? 0);
const EXPERIMENTAL = 0x88b5; // local experimental EtherType: nothing in the kernel answers it

/** Frame `index` from sender `from` (1 or 2), `size` bytes: sender and index in the header, a pattern after. */
function frameFor(from: number, index: number, size = 60 + (index % 40) * 30): Buffer {
  const frame = Buffer.alloc(size);
  frame.fill(0xff, 0, 6);
  frame.writeUInt16BE(0x0200 + from, 6);
  frame.writeUInt32BE(index, 8);
  frame.writeUInt16BE(EXPERIMENTAL, 12);
  frame.writeUInt32BE(index, 14);
  for (let j = 18; j < size; j++) frame[j] = (index + j + from) & 0xff;
  return frame;
}

const VLAN = 0x8100;
const isOurs = (frame: Buffer): boolean =>
  frame.length >= 18 &&
  (frame.readUInt16BE(12) === EXPERIMENTAL ||
    (frame.readUInt16BE(12) === VLAN && frame.readUInt16BE(16) === EXPERIMENTAL));
const senderOf = (frame: Buffer): number => frame.readUInt16BE(6) - 0x0200;
const indexOf = (frame: Buffer): number => frame.readUInt32BE(8);

/** A port that keeps what it receives (only our experimental frames: the kernel may send its own). */
class Recorder {
  readonly frames: Buffer[] = [];
  readonly rejects: { reason: FramingRejectReason; length: number }[] = [];
  readonly oversized: string[] = [];
  afterClose = 0;
  closed = false;
  onEach: ((frame: Buffer) => void) | null = null;
  readonly port: RingPort;

  constructor(iface: string, options: Partial<RingPortOptions> = {}) {
    this.port = new RingPort({
      name: iface,
      iface,
      bufferFrames: 8192,
      sink: {
        onFrame: (frame) => {
          if (this.closed) this.afterClose++;
          if (!isOurs(frame)) return;
          // Copy: a later assertion compares bytes after the batch buffer is long gone from the ring.
          this.frames.push(Buffer.from(frame));
          this.onEach?.(frame);
        },
        onReject: (reason, length) => {
          if (this.closed) this.afterClose++;
          this.rejects.push({ reason, length });
        },
      },
      ...options,
    });
    this.port.on('oversized', (message: string) => this.oversized.push(message));
  }

  close(): void {
    this.closed = true;
    this.port.close();
  }

  /** Every frame from `from`, byte-exact and in order, as sent with frameFor(from, i). */
  exactFrom(from: number, expected: number): boolean {
    const mine = this.frames.filter((f) => senderOf(f) === from);
    return mine.length === expected && mine.every((f, i) => f.equals(frameFor(from, i)));
  }

  /** The frames from `from` arrived in increasing index order, each byte-exact (some may be missing). */
  orderedSubsetFrom(from: number, size?: number): boolean {
    let last = -1;
    for (const f of this.frames.filter((g) => senderOf(g) === from)) {
      const i = indexOf(f);
      if (i <= last || !f.equals(frameFor(from, i, size))) return false;
      last = i;
    }
    return true;
  }
}

function done(result: object): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Resolves when check() holds, or after timeoutMs (the caller asserts on what arrived). */
function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    const poll = (): void => {
      if (check() || Date.now() - started > timeoutMs) resolve();
      else setTimeout(poll, 5);
    };
    poll();
  });
}

async function roundtrip(): Promise<void> {
  // One end skips the qdisc (PACKET_QDISC_BYPASS), the other goes through it: both must carry frames.
  const a = new Recorder(ifaceA, { qdiscBypass: true });
  const b = new Recorder(ifaceB);
  for (let i = 0; i < count; i++) {
    a.port.send(frameFor(1, i));
    b.port.send(frameFor(2, i));
  }
  await until(() => a.frames.length >= count && b.frames.length >= count);
  const result = {
    aFromB: a.exactFrom(2, count),
    bFromA: b.exactFrom(1, count),
    aReceived: a.frames.length,
    bReceived: b.frames.length,
    ownCaptured: a.frames.filter((f) => senderOf(f) === 1).length + b.frames.filter((f) => senderOf(f) === 2).length,
    aBypass: a.port.ringInfo().qdiscBypass,
    bBypass: b.port.ringInfo().qdiscBypass,
    aOut: a.port.counters.framesOut,
    bOut: b.port.counters.framesOut,
  };
  a.close();
  b.close();
  done(result);
}

async function batch(): Promise<void> {
  const a = new Recorder(ifaceA);
  const b = new Recorder(ifaceB);
  // All queued in one turn: one sendmmsg batch fills b's ring before b's poll callback runs.
  for (let i = 0; i < count; i++) a.port.send(frameFor(1, i));
  await until(() => b.frames.length >= count);
  const counters = b.port.counters;
  done({
    exact: b.exactFrom(1, count),
    received: b.frames.length,
    batchesIn: counters.batchesIn,
    senderBatchesOut: a.port.counters.batchesOut,
    kernelDrops: counters.kernelDrops,
  });
  a.close();
  b.close();
}

/**
 * b keeps the frames it is handed without copying them while megabytes more arrive: a kept frame must never
 * be overwritten (the addon carves batches out of slabs it never writes twice), and batches must share
 * their memory (fewer Buffers than batches) and move on to new memory when a slab is used up. b also asks
 * for each frame's kernel receive time.
 */
async function keep(): Promise<void> {
  const a = new Recorder(ifaceA);
  const b = new Recorder(ifaceB, { bufferFrames: 8192, timestamps: true });
  const kept: Buffer[] = [];
  const times: number[] = [];
  b.onEach = (frame) => {
    kept.push(frame);
    times.push(b.port.frameTimeUs);
  };
  const startedUs = ringClockUs();
  // Several turns, so that b sees many batches; frames of 60 to 1230 bytes, about 2.5 MB in all.
  for (let sent = 0; sent < count;) {
    for (let n = 0; n < 100 && sent < count; n++, sent++) a.port.send(frameFor(1, sent));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => kept.length >= count);
  const memories = new Set(kept.map((f) => f.buffer));
  const endedUs = ringClockUs();
  done({
    // Kernel receive times: within the run, on the same clock as ringClockUs(), in arrival order.
    timesInRun: times.every((t, i) => t >= startedUs && t <= endedUs && (i === 0 || t >= times[i - 1])),
    received: kept.length,
    intact: kept.length === count && kept.every((f, i) => f.equals(frameFor(1, i))),
    batchesIn: b.port.counters.batchesIn,
    memories: memories.size,
    kernelDrops: b.port.counters.kernelDrops,
  });
  a.close();
  b.close();
}

async function sizes(): Promise<void> {
  const a = new Recorder(ifaceA, { mtu: 9000 });
  const b = new Recorder(ifaceB, { mtu: 1500 });
  const full = frameFor(1, 0, 1514); // MTU 1500 + Ethernet header
  const jumbo = frameFor(1, 1, 4000); // larger than b's 2048-byte ring slot
  const small = frameFor(1, 2, 60);
  // 802.1Q: the receiving kernel moves the tag into the slot header; the port must put it back.
  const tagged = Buffer.concat([full.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x2a]), small.subarray(12)]);
  a.port.send(full);
  a.port.send(jumbo);
  a.port.send(small);
  a.port.send(tagged);
  await until(() => b.frames.length + b.rejects.length >= 4);
  const counters = b.port.counters;
  done({
    slotBytes: b.port.slotBytes,
    received: b.frames.map((f) => f.length),
    fullExact: b.frames.some((f) => f.equals(full)),
    smallExact: b.frames.some((f) => f.equals(small)),
    taggedExact: b.frames.some((f) => f.equals(tagged)),
    rejects: b.rejects,
    truncated: counters.truncated,
    oversizedWarnings: b.oversized,
    senderErrors: a.port.counters.sendErrors,
  });
  a.close();
  b.close();
}

/** a sends through a tbf qdisc (set by the test) with a small send buffer: the kernel says EAGAIN. */
async function backpressure(txQueueFrames: number): Promise<void> {
  const a = new Recorder(ifaceA, { qdiscBypass: false, sndbufBytes: 32768, txQueueFrames });
  const b = new Recorder(ifaceB, { bufferFrames: 32768 });
  let accepted = 0;
  for (let i = 0; i < count; i++) if (a.port.send(frameFor(1, i, 100))) accepted++;
  await until(() => b.frames.length >= accepted && a.port.counters.sendQueued === 0, 20_000);
  const out = a.port.counters;
  done({
    accepted,
    received: b.frames.length,
    orderedAndExact: b.orderedSubsetFrom(1, 100),
    framesOut: out.framesOut,
    sendBlocked: out.sendBlocked,
    sendRefused: out.sendRefused,
    sendErrors: out.sendErrors,
    kernelDrops: b.port.counters.kernelDrops,
  });
  a.close();
  b.close();
}

/**
 * b closes itself from inside its sink while a floods; then a closes with frames still queued behind a slow
 * qdisc. Nothing may reach a sink after its close, and the process must exit on its own: no poll left.
 */
async function closeBusy(): Promise<void> {
  const a = new Recorder(ifaceA, { qdiscBypass: false, sndbufBytes: 32768 });
  const b = new Recorder(ifaceB);
  b.onEach = () => {
    if (b.frames.length === 100) b.close();
  };
  for (let i = 0; i < count; i++) a.port.send(frameFor(1, i, 200));
  await until(() => b.closed && a.port.counters.sendBlocked > 0);
  const beforeClose = a.port.counters;
  a.close();
  a.close(); // twice is harmless
  const sentAfterClose = a.port.send(frameFor(1, 0));
  const result = {
    receivedByB: b.frames.length,
    afterCloseB: b.afterClose,
    afterCloseA: a.afterClose,
    senderBlocked: beforeClose.sendBlocked,
    discardedAtClose: a.port.counters.sendDiscardedAtClose,
    framesOut: a.port.counters.framesOut,
    sentAfterClose,
  };
  // Exits only when no handle is left: a poll that survived close() would keep the process (and the test) hanging.
  process.once('beforeExit', () => done({ ...result, afterCloseA: a.afterClose, afterCloseB: b.afterClose }));
}

const scenarios: Record<string, () => Promise<void>> = {
  roundtrip,
  batch,
  keep,
  sizes,
  'backpressure-fits': () => backpressure(count),
  'backpressure-overflow': () => backpressure(1024),
  'close-busy': closeBusy,
};
await scenarios[scenario]();
