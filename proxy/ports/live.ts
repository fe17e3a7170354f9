import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import {
  DEFAULT_BUFFER_FRAMES,
  LiveCaptureUnavailable,
  oversizedMessage,
  zeroLivePortCounters,
  type LivePortCounters,
  type LivePortOptions,
} from './capture.js';

/**
 * A live interface through libpcap (the optional `cap` package): frames captured on it go to a FrameSink,
 * frames given to send() are injected on it.
 *
 * cap hands every packet over in one shared buffer that libpcap overwrites on the next packet, so each
 * frame is copied out before the sink sees it (the engine holds frames across event-loop turns).
 * A handle does not capture what it injects itself, so one handle per interface serves both directions
 * without looping our own output back in.
 */

/** The subset of cap's Cap class this port uses. */
interface CapHandle {
  open(device: string, filter: string, bufferSize: number, buffer: Buffer): string;
  on(event: 'packet', listener: (length: number, truncated: boolean) => void): void;
  send(buffer: Buffer, length?: number): void;
  close(): void;
}

/** The pcap backend's LiveCaptureUnavailable: the `cap` package did not load. */
export class PcapCaptureUnavailable extends LiveCaptureUnavailable {
  constructor(cause: unknown) {
    super(
      'live interfaces need the optional "cap" package built against libpcap: ' +
        'install the headers (apt-get install libpcap-dev) and run `npm ci` again',
      cause,
    );
    this.name = 'PcapCaptureUnavailable';
  }
}

let capModule: { Cap: new () => CapHandle } | undefined;

function loadCap(): { Cap: new () => CapHandle } {
  if (capModule) return capModule;
  try {
    capModule = createRequire(import.meta.url)('cap') as { Cap: new () => CapHandle };
    return capModule;
  } catch (err) {
    throw new PcapCaptureUnavailable(err);
  }
}

export function liveCaptureAvailable(): boolean {
  try {
    loadCap();
    return true;
  } catch {
    return false;
  }
}

/**
 * libpcap's TPACKET_V3 ring slots hold a snaplen-sized frame each (cap fixes snaplen at 65535): with
 * DEFAULT_BUFFER_FRAMES, a 64 MiB ring per interface.
 */
const RING_SLOT_BYTES = 65536;

/** Events: 'oversized' (message: string) once, when the first frame larger than the MTU arrives. */
export class LivePort extends EventEmitter {
  readonly counters: LivePortCounters = zeroLivePortCounters();
  private readonly handle: CapHandle;
  private readonly shared = Buffer.alloc(RING_SLOT_BYTES);
  private readonly maxFrame: number;
  private open = true;

  constructor(private readonly options: LivePortOptions) {
    super();
    const { Cap } = loadCap();
    this.handle = new Cap();
    this.maxFrame = (options.mtu ?? 1500) + 18;
    const ringBytes = (options.bufferFrames ?? DEFAULT_BUFFER_FRAMES) * RING_SLOT_BYTES;
    const linkType = this.handle.open(options.iface, '', ringBytes, this.shared);
    if (linkType !== 'ETHERNET') {
      this.handle.close();
      throw new Error(`interface ${options.iface} (${options.name}): link type ${linkType}, expected ETHERNET`);
    }
    this.handle.on('packet', (length, truncated) => this.onPacket(length, truncated));
  }

  private onPacket(length: number, truncated: boolean): void {
    if (!this.open) return;
    if (truncated) {
      this.counters.truncated++;
      this.options.sink.onReject('truncated', length);
      return;
    }
    if (length > this.maxFrame) {
      if (this.counters.oversized++ === 0)
        this.emit('oversized', oversizedMessage(this.options.iface, this.options.name, length));
    }
    this.counters.framesIn++;
    this.counters.bytesIn += length;
    this.options.sink.onFrame(Buffer.from(this.shared.subarray(0, length)), 0);
  }

  /** Inject one frame (Ethernet header at `start`). Returns false when libpcap refused it (counted). */
  send(frame: Buffer, start = 0): boolean {
    if (!this.open) return false;
    const view = start === 0 ? frame : frame.subarray(start);
    try {
      this.handle.send(view, view.length);
    } catch {
      this.counters.sendErrors++;
      return false;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += view.length;
    return true;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.handle.close();
  }
}
