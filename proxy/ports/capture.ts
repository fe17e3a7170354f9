import type { FrameSink } from '../port.js';

/**
 * What the two capture backends share: `ring` (proxy/ports/ring.ts, our AF_PACKET addon) and `pcap`
 * (proxy/ports/live.ts, libpcap through `cap`). Each opens one live interface, hands what it captures to a
 * FrameSink and sends what it is given; both take these options, keep these counters and fail to load with
 * a LiveCaptureUnavailable.
 */

/** Frames a burst may queue in the kernel before it drops, when the options do not say. */
export const DEFAULT_BUFFER_FRAMES = 1024;

export interface LivePortOptions {
  /** The role, e.g. "client" or "primary": used in errors and counters. */
  name: string;
  iface: string;
  sink: FrameSink;
  /** How many frames a burst may queue in the kernel before it drops: the receive ring is sized from it. */
  bufferFrames?: number;
  /** Link MTU; a captured frame longer than MTU + Ethernet/VLAN headers means offloads are on. */
  mtu?: number;
}

export interface LivePortCounters {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  truncated: number;
  oversized: number;
  sendErrors: number;
}

/** Every counter a live port keeps, at zero (the ring port's extend these). */
export function zeroLivePortCounters(): LivePortCounters {
  return { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, truncated: 0, oversized: 0, sendErrors: 0 };
}

/** The warning both backends give once, at the first frame longer than the MTU allows. */
export function oversizedMessage(iface: string, name: string, length: number): string {
  return (
    `interface ${iface} (${name}) delivered a ${length}-byte frame, larger than its MTU allows: ` +
    `segmentation/receive offloads are on. Fix: ethtool -K ${iface} tx off tso off gso off gro off ` +
    '(and the same on the VM side of the link)'
  );
}

/**
 * A capture backend could not load. `run` reports any of these the same way (exit status 4); the message
 * says what to install, and the first line of the loader's own error follows in parentheses.
 */
export class LiveCaptureUnavailable extends Error {
  readonly code = 'COLO_NO_CAPTURE';
  constructor(whatToInstall: string, cause: unknown) {
    super(whatToInstall + (cause instanceof Error ? ` (${cause.message.split('\n')[0]})` : ''), { cause });
    this.name = 'LiveCaptureUnavailable';
  }
}
