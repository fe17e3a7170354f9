import { createRequire } from 'node:module';
import { LiveCaptureUnavailable } from './capture.js';

/**
 * The binding to our AF_PACKET addon (native/packet-ring, C: `ring.c` is the socket and ring, `packet_ring.c`
 * the Node binding): its interface, loading it, and the error when it is not built. RingPort
 * (proxy/ports/ring.ts) is the port over it.
 */

export interface NativeRingStats {
  kernelPackets: number;
  kernelDrops: number;
  outgoingSkipped: number;
  frameSize: number;
  frameCount: number;
  qdiscBypass: number;
  ignoreOutgoing: number;
}

/**
 * Where sendBatch() writes its outcome, one number per slot of a reused Float64Array (the addon's
 * packet_ring.c fills the same slots).
 */
export const SendBatchResult = {
  /** Frames the call is done with, from `first` on: sent, or refused for good (FAILED of them). */
  DONE: 0,
  FAILED: 1,
  /** Why the kernel stopped taking frames before `count` (EAGAIN or ENOBUFS), else 0. */
  BLOCKED_ERRNO: 2,
  /** The errno of the last frame refused for good, else 0. */
  FAILED_ERRNO: 3,
  /** Bytes of the frames sent. */
  BYTES: 4,
  LENGTH: 5,
} as const;

export interface NativePacketRing {
  /** Sends `count` frames from `meta` (offset, length pairs) entry `first` on; see SendBatchResult. */
  sendBatch(buffer: Buffer, meta: Int32Array, first: number, count: number, result: Float64Array): number;
  sendOne(buffer: Buffer, offset: number, length: number): number;
  watchWritable(): void;
  stats(): NativeRingStats;
  close(): void;
}

export type PacketRingClass = new (
  iface: string,
  frameSize: number,
  frameCount: number,
  qdiscBypass: boolean,
  sndbufBytes: number,
  meta: Int32Array,
  onBatch: (buffer: Buffer, entries: number, kernelDrops: number) => void,
  onWritable: () => void,
  times?: Float64Array,
) => NativePacketRing;

/** The ring backend's LiveCaptureUnavailable: the packet-ring addon did not load. */
export class RingCaptureUnavailable extends LiveCaptureUnavailable {
  constructor(cause: unknown, pcapAvailable = true) {
    super(
      'the ring capture backend needs the packet-ring addon (native/packet-ring) built: install a C ' +
        'toolchain (apt-get install build-essential python3) and run `npm ci` again' +
        (pcapAvailable
          ? ', or set `capture: pcap`'
          : '; the pcap backend is missing too (apt-get install libpcap-dev, then `npm ci`)'),
      cause,
    );
    this.name = 'RingCaptureUnavailable';
  }
}

interface PacketRingAddon {
  PacketRing: PacketRingClass;
  clockUs(): number;
}

let addon: PacketRingAddon | undefined;
let addonError: unknown;

/** The installed package first (npm links native/packet-ring there), then the build folder itself. */
export function loadPacketRing(): PacketRingAddon {
  if (addon) return addon;
  if (addonError !== undefined) throw new RingCaptureUnavailable(addonError);
  const require = createRequire(import.meta.url);
  const candidates = ['colo-packet-ring', '../../native/packet-ring/build/Release/packet_ring.node'];
  for (const candidate of candidates) {
    try {
      addon = require(candidate) as PacketRingAddon;
      return addon;
    } catch (err) {
      addonError = err;
    }
  }
  throw new RingCaptureUnavailable(addonError);
}

/** CLOCK_REALTIME in microseconds: the clock of RingPort.frameTimeUs, for measuring against it. */
export function ringClockUs(): number {
  return loadPacketRing().clockUs();
}

/** Why the addon did not load, for messages; null when it did. */
export function ringCaptureError(): unknown {
  return ringCaptureAvailable() ? null : addonError;
}

export function ringCaptureAvailable(): boolean {
  try {
    loadPacketRing();
    return true;
  } catch {
    return false;
  }
}
