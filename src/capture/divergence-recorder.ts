import type { Divergence, Packet } from '../../compare/types.js';
import { formatConnection } from '../replay/summary.js';
import { divergenceRecord } from '../stats/divergence-record.js';
import { PcapngWriter } from './pcapng-writer.js';
import { openWriteStream, StreamSink } from './sink.js';

export interface CaptureTime {
  seconds: number;
  nanoseconds: number;
}

export interface DivergenceRecorderOptions {
  /** Added to a packet's arrivedAt (ms) to get the capture time: zero live, the first frame's time in replay. */
  clockOrigin?: CaptureTime;
  /** Section comment, e.g. the command line or the capture names. */
  comment?: string;
}

/**
 * Writes each divergence's primary and secondary frame side by side into a pcapng with two interfaces
 * (0 = primary, 1 = secondary), each packet commented with a line naming the divergence's number, reason,
 * offset and connection, so a pair can be found in Wireshark with `frame.comment contains "divergence 7:"`,
 * and a second line holding the divergence record as JSON (the shape `--json` and `--events` use).
 * Streams through a WriteStream (flushed after every divergence) so the live proxy can keep it open.
 */
export class DivergenceRecorder {
  /** Divergences recorded. */
  count = 0;
  /** Divergences that carried no frame at all (nothing to write; counted so it is never silent). */
  withoutFrames = 0;
  /** Added to a packet's arrivedAt; the replay sets it once the first frame is read. */
  clockOrigin: CaptureTime;
  private readonly writer: PcapngWriter;

  constructor(
    private readonly sink: StreamSink,
    options: DivergenceRecorderOptions = {},
  ) {
    this.clockOrigin = options.clockOrigin ?? { seconds: 0, nanoseconds: 0 };
    this.writer = new PcapngWriter(sink, { comment: options.comment ?? 'colo-proxy divergences' });
    this.writer.addInterface({ name: 'primary' });
    this.writer.addInterface({ name: 'secondary' });
    this.writer.flush();
  }

  /** Opens (truncates) a file; rejects with the file's error (e.g. ENOENT for a missing directory). */
  static async open(path: string, options: DivergenceRecorderOptions = {}): Promise<DivergenceRecorder> {
    return new DivergenceRecorder(new StreamSink(await openWriteStream(path)), options);
  }

  record(divergence: Divergence): void {
    this.count++;
    if (divergence.primary === null && divergence.secondary === null) {
      this.withoutFrames++;
      return;
    }
    const comment = describe(this.count, divergence);
    const origin = this.clockOrigin.seconds * 1000 + this.clockOrigin.nanoseconds / 1e6;
    const record = JSON.stringify(divergenceRecord(divergence, origin));
    this.writePacket(0, divergence.primary, `${comment}; primary frame\n${record}`);
    this.writePacket(1, divergence.secondary, `${comment}; secondary frame\n${record}`);
    this.writer.flush();
  }

  private writePacket(interfaceId: number, packet: Packet | null, comment: string): void {
    if (packet === null) return;
    // Seconds and nanoseconds kept apart: epoch nanoseconds do not fit a double, and adding a float epoch
    // origin to a virtual time would shift the capture's own timestamps by fractions of a microsecond.
    const wholeSeconds = Math.floor(packet.arrivedAt / 1000);
    const fraction = Math.round((packet.arrivedAt - wholeSeconds * 1000) * 1e6) + this.clockOrigin.nanoseconds;
    const carry = Math.floor(fraction / 1e9);
    const seconds = this.clockOrigin.seconds + wholeSeconds + carry;
    const nanoseconds = fraction - carry * 1e9;
    this.writer.writePacket(interfaceId, seconds, nanoseconds, packet.frame.subarray(packet.start), { comment });
  }

  /** Resolves when every byte is on disk. */
  close(): Promise<void> {
    this.writer.flush();
    return this.sink.close();
  }
}

function describe(index: number, d: Divergence): string {
  const offset = d.offset === null ? 'no offset' : `offset ${d.offset}`;
  const missing = d.primary === null ? ' (no primary frame)' : d.secondary === null ? ' (no secondary frame)' : '';
  return `divergence ${index}: ${d.reason}, ${offset}, ${formatConnection(d.connection)}${missing}: ${d.detail}`;
}
