/**
 * bench:qemu's wire clock: the kernel's time for each framed frame as its TCP segment crosses the loopback
 * interface. The latency round measures a pair from the secondary's frame on the wire to its release on the
 * wire: neither the bench's write call nor its own wake-up to read the release is counted, only what the
 * implementation did in between.
 *
 * tcpdump takes the timestamps (root): a kernel filter keeps only the data segments of the watched
 * connections, and without immediate mode it wakes about once a second, so the clock disturbs what it
 * measures as little as it can. (A packet ring read by the bench itself woke the bench at every segment,
 * and that doubled both implementations' latency.) The file is read when the round is over.
 *
 * A frame is known by the TCP stream it travels in (the implementation's listening port, either direction)
 * and by its own inner TCP sequence number, which the latency round makes unique per pair.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dissect } from '../compare/wire/dissect.js';
import { FrameInfo, IpProtocol } from '../compare/wire/frame-info.js';
import { openCaptureFile } from '../src/capture/open.js';
import { hasCommand } from '../test/support/prerequisites.js';

const ETHERNET = 14;
const FRAMING = 4;
/** Inner frames are Ethernet + IPv4 (20 bytes, no options) + TCP: the sequence number is 4 bytes into TCP. */
const INNER_SEQ = ETHERNET + 20 + 4;
const READY_TIMEOUT_MS = 10_000;
/** tcpdump's capture timeout: the kernel hands it a block of packets at least this often. */
const BLOCK_TIMEOUT_MS = 1000;

/** Why the wire clock cannot run here, or null when it can. */
export function wireClockUnavailable(): string | null {
  if (process.env.COLO_BENCH_WIRE === '0') return 'COLO_BENCH_WIRE=0';
  if (process.getuid?.() !== 0) return 'not root (tcpdump on lo needs CAP_NET_RAW)';
  const tcpdump = hasCommand('tcpdump', 'tcpdump');
  return tcpdump.ok ? null : `tcpdump not found (${tcpdump.fix})`;
}

/** One direction of one TCP connection: the bytes of a frame not yet whole, and the next sequence number. */
interface Stream {
  pending: Buffer;
  /** When the first of the pending bytes crossed. */
  pendingSince: number;
  nextSeq: number;
}

export class WireClock {
  /** `port * 2^32 + inner seq` (both fit in 53 bits) -> kernel time in µs (CLOCK_REALTIME). */
  private readonly seen = new Map<number, number>();
  /** The same key -> when the frame's first bytes (its length) crossed, where that was earlier. */
  private readonly begun = new Map<number, number>();
  private readonly streams = new Map<number, Stream>();
  private readonly info = new FrameInfo();
  /** Segments that did not follow on from the last one seen in their stream: its framing is lost from there. */
  gaps = 0;
  /** Segments tcpdump kept, and what it said it dropped (its summary line). */
  segments = 0;
  dropped: string | null = null;
  private stopped = false;

  private constructor(
    private readonly ports: ReadonlySet<number>,
    private readonly dir: string,
    private readonly tcpdump: ChildProcess,
    private readonly stderr: () => string,
  ) {}

  /** Starts tcpdump on lo for the data segments to and from `ports`; resolves once it is capturing. */
  static async start(ports: ReadonlySet<number>): Promise<WireClock> {
    const dir = mkdtempSync(join(tmpdir(), 'colo-wire-'));
    const portFilter = [...ports].map((p) => `port ${p}`).join(' or ');
    const hasPayload = '(ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) != 0';
    const args = ['-i', 'lo', '-n', '-B', '65536', '--time-stamp-precision=nano', '-w', join(dir, 'lo.pcap')];
    const tcpdump = spawn('tcpdump', [...args, `tcp and (${portFilter}) and ${hasPayload}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    tcpdump.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const clock = new WireClock(ports, dir, tcpdump, () => stderr);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`tcpdump not capturing after ${READY_TIMEOUT_MS} ms: ${stderr}`)),
        READY_TIMEOUT_MS,
      );
      const check = (): void => {
        if (stderr.includes('listening on')) done();
      };
      const exited = (): void => done(new Error(`tcpdump exited: ${stderr}`));
      function done(err?: Error): void {
        clearTimeout(timer);
        tcpdump.stderr!.off('data', check);
        tcpdump.off('exit', exited);
        if (err) {
          rmSync(dir, { recursive: true, force: true });
          reject(err);
        } else resolve();
      }
      tcpdump.stderr!.on('data', check);
      tcpdump.once('exit', exited);
    });
    return clock;
  }

  /**
   * Stops tcpdump and reads its file. Once; later calls do nothing. tcpdump reads the kernel's buffer a block
   * at a time, and a block goes to it when full or after its timeout (tcpdump's 1 s); what is still in the
   * current block when tcpdump is stopped is lost, so the last segments get two timeouts to arrive first.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tcpdump.exitCode === null && this.tcpdump.signalCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 2 * BLOCK_TIMEOUT_MS));
      const exited = new Promise<void>((resolve) => this.tcpdump.once('exit', () => resolve()));
      this.tcpdump.kill('SIGINT');
      await exited;
    }
    this.dropped = /(\d+) packets dropped by kernel/.exec(this.stderr())?.[1] ?? null;
    try {
      const reader = openCaptureFile(join(this.dir, 'lo.pcap'));
      const record = reader.record;
      while (reader.next()) this.onSegment(record.data, record.seconds * 1e6 + record.nanoseconds / 1e3);
      reader.close();
      if (reader.error) throw new Error(`reading tcpdump's file: ${reader.error.message}`);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /**
   * When the frame with inner sequence `seq` had crossed lo, whole, in the connection to or from `port`;
   * undefined if it was not seen. A frame written in two segments (QEMU writes the length, then the frame)
   * counts from the second.
   */
  timeUs(port: number, seq: number): number | undefined {
    return this.seen.get(port * 2 ** 32 + seq);
  }

  /** When the first bytes of that frame crossed lo: earlier than timeUs() only for a frame written in parts. */
  firstBytesUs(port: number, seq: number): number | undefined {
    const id = port * 2 ** 32 + seq;
    return this.begun.get(id) ?? this.seen.get(id);
  }

  private onSegment(frame: Buffer, time: number): void {
    const info = this.info;
    if (dissect(frame, 0, frame.length, info) !== null || info.ipProtocol !== IpProtocol.TCP) return;
    const { srcPort: src, dstPort: dst } = info;
    const port = this.ports.has(dst) ? dst : this.ports.has(src) ? src : -1;
    if (port < 0 || info.payloadLength === 0) return;
    const payload = frame.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength);
    this.segments++;
    const seq = info.tcpSeq;
    const key = src * 65536 + dst;
    let stream = this.streams.get(key);
    if (stream === undefined) {
      // Watching starts between frames (the sessions are idle then), so the first segment starts one.
      stream = { pending: Buffer.alloc(0), pendingSince: 0, nextSeq: seq };
      this.streams.set(key, stream);
    }
    if (seq !== stream.nextSeq) {
      this.gaps++;
      stream.pending = Buffer.alloc(0);
    }
    stream.nextSeq = (seq + payload.length) >>> 0;
    let firstBytes = stream.pending.length === 0 ? time : stream.pendingSince;
    let bytes = stream.pending.length === 0 ? payload : Buffer.concat([stream.pending, payload]);
    while (bytes.length >= FRAMING && bytes.length >= FRAMING + bytes.readUInt32BE(0)) {
      const length = bytes.readUInt32BE(0);
      if (length >= INNER_SEQ + 4) {
        const id = port * 2 ** 32 + bytes.readUInt32BE(FRAMING + INNER_SEQ);
        if (!this.seen.has(id)) {
          this.seen.set(id, time);
          if (firstBytes !== time) this.begun.set(id, firstBytes);
        }
      }
      bytes = bytes.subarray(FRAMING + length);
      firstBytes = time;
    }
    stream.pending = Buffer.from(bytes);
    stream.pendingSince = firstBytes;
  }
}
