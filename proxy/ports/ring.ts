import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import type { FrameSink } from '../port.js';
import {
  DEFAULT_BUFFER_FRAMES,
  oversizedMessage,
  zeroLivePortCounters,
  type LivePortCounters,
  type LivePortOptions,
} from './capture.js';
import {
  loadPacketRing,
  SendBatchResult,
  type NativePacketRing,
  type NativeRingStats,
  type PacketRingClass,
} from './packet-ring.js';

/**
 * A live interface through our own AF_PACKET addon (native/packet-ring): the `ring` capture backend.
 *
 * Receive: a TPACKET_V2 ring (each frame visible as soon as the kernel writes it; V3 would hold a block
 * back for up to its retire timeout). On each wake-up the addon copies every ready frame into the next
 * free region of a 256 KiB slab (a batch over half a slab gets a Buffer of its own) and calls onBatch
 * once; the frames are views of that memory, which nothing writes again, so the sink may keep them (a
 * kept frame keeps its slab alive). Frames this host sends out of the interface are not captured
 * (PACKET_IGNORE_OUTGOING).
 *
 * Send: send() copies the frame into a queue and returns; the queue goes to the kernel in one sendmmsg
 * batch from a microtask, i.e. after the current receive batch (or timer) has produced all its output.
 * When the kernel has no room (EAGAIN, ENOBUFS) the rest stays queued and is retried when the socket is
 * writable; when the queue itself is full, send() returns false and counts it (sendRefused).
 */

/** The addon's mark, in a batch's meta, for a frame longer than its ring slot (its length is the wire length). */
const TRUNCATED = -1;
const ETHERNET_HEADER = 14;
/** tpacket2 header, sockaddr_ll and the alignment before the MAC header, rounded up. */
const SLOT_OVERHEAD = 128;
const MIN_SLOT_BYTES = 2048;
/** Frames per receive callback: bounds the batch Buffer and the delay before the first frame's handling. */
const DEFAULT_MAX_BATCH = 256;
const DEFAULT_TX_QUEUE_FRAMES = 8192;
const DEFAULT_SNDBUF_BYTES = 4 << 20;
/** ENOBUFS is the device queue, which has no writable event: retry on a short timer instead. */
const ENOBUFS_RETRY_MS = 1;
const { EAGAIN } = constants.errno;

/** A slot holds a frame of mtu + 18 (Ethernet and one VLAN tag) bytes; the ring needs powers of two. */
export function ringSlotBytes(mtu: number): number {
  let size = MIN_SLOT_BYTES;
  while (size < mtu + 18 + SLOT_OVERHEAD) size *= 2;
  return size;
}

export interface RingPortOptions extends LivePortOptions {
  /** Frames send() may queue while the kernel has no room; beyond it send() returns false (counted). */
  txQueueFrames?: number;
  /** Frames handed to the sink per callback at most. */
  maxBatch?: number;
  /**
   * Send straight to the driver, skipping the qdisc and local sniffers (PACKET_QDISC_BYPASS). Off by
   * default: tcpdump on the interface cannot see our output with it on, and on veth it measured no faster
   * (docs/inline.md, Capture backends).
   */
  qdiscBypass?: boolean;
  /** The socket's send buffer (SO_SNDBUFFORCE as root): bytes in flight before the kernel says EAGAIN. */
  sndbufBytes?: number;
  /**
   * Keep each frame's kernel receive time (frameTimeUs, during the sink call). For measurements: it leaves
   * this process's own wake-up out of a latency.
   */
  timestamps?: boolean;
  /** Tests: a stand-in for the addon's PacketRing class. */
  ringClass?: PacketRingClass;
}

export interface RingPortCounters extends LivePortCounters {
  /** Frames the kernel dropped because the receive ring was full (PACKET_STATISTICS tp_drops). */
  kernelDrops: number;
  batchesIn: number;
  batchesOut: number;
  /** Times the kernel had no room and the queue waited for the socket to become writable. */
  sendBlocked: number;
  /** Frames queued for sending now. */
  sendQueued: number;
  /** Frames send() refused because the queue was full. */
  sendRefused: number;
  /** Frames still queued when the port closed. */
  sendDiscardedAtClose: number;
}

/**
 * Events: 'oversized' (message) once, at the first frame larger than the MTU allows; 'drops'
 * (added, total) when the kernel reports receive-ring drops.
 */
export class RingPort extends EventEmitter {
  private readonly c: RingPortCounters = {
    ...zeroLivePortCounters(),
    kernelDrops: 0,
    batchesIn: 0,
    batchesOut: 0,
    sendBlocked: 0,
    sendQueued: 0,
    sendRefused: 0,
    sendDiscardedAtClose: 0,
  };
  /** The errno of the last frame the kernel refused for good (EMSGSIZE, ENETDOWN, ...), or 0. */
  lastSendErrno = 0;
  /** Why the queue last waited: EAGAIN (socket buffer full, waits for writable) or ENOBUFS (device queue, timer). */
  lastBlockedErrno = 0;
  readonly slotBytes: number;
  private readonly ring: NativePacketRing;
  private readonly sink: FrameSink;
  private readonly maxFrame: number;
  private readonly rxMeta: Int32Array;
  private readonly rxTimes: Float64Array | undefined;
  /**
   * With `timestamps`: while the sink handles a frame, when the kernel received it (CLOCK_REALTIME, µs, as
   * ringClockUs()); otherwise 0.
   */
  frameTimeUs = 0;
  private readonly txBuffer: Buffer;
  private readonly txMeta: Int32Array;
  private readonly txCapacity: number;
  /** Reused by every flush: the batch's outcome, read by SendBatchResult's names. */
  private readonly sendResult = new Float64Array(SendBatchResult.LENGTH);
  /** Queue: frames txFirst..txEnd-1 wait; their bytes end at txBytesEnd. */
  private txFirst = 0;
  private txEnd = 0;
  private txBytesEnd = 0;
  private flushScheduled = false;
  private blocked = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private open = true;

  constructor(private readonly options: RingPortOptions) {
    super();
    const PacketRing = options.ringClass ?? loadPacketRing().PacketRing;
    const mtu = options.mtu ?? 1500;
    this.sink = options.sink;
    this.maxFrame = mtu + 18;
    this.slotBytes = ringSlotBytes(mtu);
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    this.rxMeta = new Int32Array(2 * maxBatch);
    this.rxTimes = options.timestamps ? new Float64Array(maxBatch) : undefined;
    this.txCapacity = options.txQueueFrames ?? DEFAULT_TX_QUEUE_FRAMES;
    this.txMeta = new Int32Array(2 * this.txCapacity);
    this.txBuffer = Buffer.allocUnsafe(this.txCapacity * this.maxFrame);
    try {
      this.ring = new PacketRing(
        options.iface,
        this.slotBytes,
        options.bufferFrames ?? DEFAULT_BUFFER_FRAMES,
        options.qdiscBypass ?? false,
        options.sndbufBytes ?? DEFAULT_SNDBUF_BYTES,
        this.rxMeta,
        this.onBatch,
        this.onWritable,
        this.rxTimes,
      );
    } catch (err) {
      throw new Error(`interface ${options.iface} (${options.name}): ${(err as Error).message}`, { cause: err });
    }
  }

  /** Refreshed from the kernel on each read (kernelDrops), so a status request sees current figures. */
  get counters(): RingPortCounters {
    if (this.open) this.noteDrops(this.ring.stats().kernelDrops);
    this.c.sendQueued = this.txEnd - this.txFirst;
    return this.c;
  }

  /** The ring as the kernel set it up: slot size, slot count, whether qdisc bypass and outgoing-ignore hold. */
  ringInfo(): NativeRingStats {
    return this.ring.stats();
  }

  private readonly onBatch = (buffer: Buffer, entries: number, kernelDrops: number): void => {
    const meta = this.rxMeta;
    const times = this.rxTimes;
    const c = this.c;
    c.batchesIn++;
    for (let i = 0; i < entries && this.open; i++) {
      const offset = meta[2 * i];
      const length = meta[2 * i + 1];
      if (times) this.frameTimeUs = times[i];
      if (length > this.maxFrame) this.noteOversized(length);
      if (offset === TRUNCATED) {
        c.truncated++;
        this.sink.onReject('truncated', length);
        continue;
      }
      c.framesIn++;
      c.bytesIn += length;
      this.sink.onFrame(buffer.subarray(offset, offset + length), 0);
    }
    if (kernelDrops > c.kernelDrops) this.noteDrops(kernelDrops);
  };

  private noteOversized(length: number): void {
    if (this.c.oversized++ === 0)
      this.emit('oversized', oversizedMessage(this.options.iface, this.options.name, length));
  }

  private noteDrops(total: number): void {
    if (total <= this.c.kernelDrops) return;
    const added = total - this.c.kernelDrops;
    this.c.kernelDrops = total;
    this.emit('drops', added, total);
  }

  /** Queues one frame (Ethernet header at `start`) for the next batch. False when refused (counted). */
  send(frame: Buffer, start = 0): boolean {
    if (!this.open) return false;
    const length = frame.length - start;
    if (length < ETHERNET_HEADER || length > this.txBuffer.length) {
      this.c.sendErrors++;
      return false;
    }
    if (this.txEnd === this.txCapacity || this.txBytesEnd + length > this.txBuffer.length) {
      this.makeRoom();
      if (this.txEnd === this.txCapacity || this.txBytesEnd + length > this.txBuffer.length) {
        this.c.sendRefused++;
        return false;
      }
    }
    frame.copy(this.txBuffer, this.txBytesEnd, start);
    this.txMeta[2 * this.txEnd] = this.txBytesEnd;
    this.txMeta[2 * this.txEnd + 1] = length;
    this.txEnd++;
    this.txBytesEnd += length;
    if (!this.flushScheduled && !this.blocked) {
      this.flushScheduled = true;
      queueMicrotask(this.flushTask);
    }
    return true;
  }

  /** Sends one frame now, bypassing the queue: 0, or the errno the kernel returned (not retried). */
  sendNow(frame: Buffer, start = 0): number {
    if (!this.open) return constants.errno.EBADF;
    const err = this.ring.sendOne(frame, start, frame.length - start);
    if (err === 0) {
      this.c.framesOut++;
      this.c.bytesOut += frame.length - start;
    } else this.c.sendErrors++;
    return err;
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private readonly onWritable = (): void => {
    this.retryTimer = null;
    this.blocked = false;
    this.flush();
  };

  /** Hands every queued frame to the kernel in one call; on EAGAIN/ENOBUFS the rest waits. */
  private flush(): void {
    const pending = this.txEnd - this.txFirst;
    if (!this.open || this.blocked || pending === 0) return;
    const result = this.sendResult;
    this.ring.sendBatch(this.txBuffer, this.txMeta, this.txFirst, pending, result);
    const done = result[SendBatchResult.DONE];
    const failed = result[SendBatchResult.FAILED];
    const c = this.c;
    c.batchesOut++;
    c.framesOut += done - failed;
    c.bytesOut += result[SendBatchResult.BYTES];
    if (failed > 0) {
      c.sendErrors += failed;
      this.lastSendErrno = result[SendBatchResult.FAILED_ERRNO];
    }
    this.txFirst += done;
    if (this.txFirst === this.txEnd) {
      this.txFirst = this.txEnd = this.txBytesEnd = 0;
      return;
    }
    c.sendBlocked++;
    this.blocked = true;
    this.lastBlockedErrno = result[SendBatchResult.BLOCKED_ERRNO];
    if (this.lastBlockedErrno === EAGAIN) this.ring.watchWritable();
    else this.retryTimer = setTimeout(this.onWritable, ENOBUFS_RETRY_MS);
  }

  /** Sends what it can, then moves the waiting frames to the front of the queue. */
  private makeRoom(): void {
    this.flush();
    if (this.txFirst === 0) return;
    const from = this.txMeta[2 * this.txFirst];
    const waiting = this.txEnd - this.txFirst;
    this.txBuffer.copyWithin(0, from, this.txBytesEnd);
    for (let i = 0; i < waiting; i++) {
      this.txMeta[2 * i] = this.txMeta[2 * (this.txFirst + i)] - from;
      this.txMeta[2 * i + 1] = this.txMeta[2 * (this.txFirst + i) + 1];
    }
    this.txFirst = 0;
    this.txEnd = waiting;
    this.txBytesEnd -= from;
  }

  /** Sends what the kernel takes now, counts the rest as discarded, and stops: no sink call after this. */
  close(): void {
    if (!this.open) return;
    this.flush();
    this.open = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.c.sendDiscardedAtClose += this.txEnd - this.txFirst;
    this.txFirst = this.txEnd = this.txBytesEnd = 0;
    this.ring.close();
    this.noteDrops(this.ring.stats().kernelDrops);
  }
}
