import { PcapWriter } from '../../src/capture/pcap.js';
import { BufferSink } from '../../src/capture/sink.js';
import { buildUdp } from './wire-build.js';

export interface ModeWorkload {
  /** Virtual length of the capture. */
  durationMs: number;
  /** One reply every this many ms, round-robin over the flows. */
  intervalMs: number;
  flows: number;
  /** Whether reply `i`, sent at `at` ms, differs between the VMs (a timestamp, a random token). */
  differs(i: number, at: number): boolean;
  /**
   * How much later the secondary's copy of each reply is captured. Default 0: a checkpoint's flush that fell
   * between a datagram and its twin would pair every later datagram of the flow with the wrong twin.
   */
  secondaryLagMs?: number;
}

/**
 * A pair of egress captures (pcap, nanosecond) of UDP replies from two VMs: the same replies at the same
 * times, the secondary's a little later, those `differs` picks carrying each VM's own token.
 */
export function buildModeWorkload(w: ModeWorkload): { primary: Buffer; secondary: Buffer } {
  const lag = w.secondaryLagMs ?? 0;
  const primary = new Writer();
  const secondary = new Writer();
  let i = 0;
  for (let at = 0; at < w.durationMs; at += w.intervalMs, i++) {
    const flow = i % w.flows;
    const differs = w.differs(i, at);
    const reply = (vm: string): Buffer =>
      buildUdp({
        src: '192.0.2.10',
        dst: '198.51.100.20',
        srcPort: 7000,
        dstPort: 20000 + flow,
        payload: `reply ${i} token=${differs ? vm[0] : 'x'}`,
      });
    primary.write(at, reply('primary'));
    secondary.write(at + lag, reply('secondary'));
  }
  return { primary: primary.done(), secondary: secondary.done() };
}

class Writer {
  private readonly sink = new BufferSink();
  private readonly writer = new PcapWriter(this.sink, { nanosecond: true });

  write(ms: number, frame: Buffer): void {
    // A base time far from 0, like a real capture; the replay measures from the first frame.
    const total = 1_700_000_000_000 + ms;
    const seconds = Math.floor(total / 1000);
    this.writer.write(seconds, Math.round((total - seconds * 1000) * 1e6), frame);
  }

  done(): Buffer {
    this.writer.flush();
    return this.sink.toBuffer();
  }
}
