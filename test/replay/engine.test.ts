import { describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import { buildTcp, buildUdp } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { openCaptureBuffer } from '../../src/capture/open.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { BufferSink } from '../../src/capture/sink.js';
import { defaultReplayOptions } from '../../src/replay/options.js';
import { replay, type ReplaySource } from '../../src/replay/replay.js';
import { divergenceVirtualMs } from '../../src/replay/summary.js';

function source(frames: [ms: number, frame: Buffer][]): ReplaySource {
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { nanosecond: true });
  for (const [ms, frame] of frames) writer.write(1767225600, Math.round(ms * 1e6), frame);
  writer.flush();
  return { reader: openCaptureBuffer(sink.toBuffer()), interface: null, size: 0 };
}

const udp = (payload: string): Buffer =>
  buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5000, dstPort: 53, payload });

describe('replay through the real CompareEngine', () => {
  it('counts malformed frames by reason and still accounts for every frame', async () => {
    const good = buildTcp({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      srcPort: 80,
      dstPort: 4000,
      seq: 1,
      ack: 1,
      flags: TcpFlag.ACK,
      payload: 'x',
    });
    // Cut inside the TCP header: the IPv4 total length now points past the frame.
    const truncated = good.subarray(0, 14 + 20 + 8);
    const summary = await replay(
      source([
        [0, good],
        [1, truncated],
      ]),
      source([[0.5, good]]),
      new CompareEngine(),
      defaultReplayOptions,
    );
    expect(summary.frames).toMatchObject({
      primary: 2,
      secondary: 1,
      released: 1,
      dropped: 1,
      malformed: 1,
      heldAtEnd: 0,
    });
    expect(summary.malformed).toEqual({ byReason: { 'ipv4-total-length': 1 }, bySide: { primary: 1, secondary: 0 } });
  });

  it('a UDP divergence reports the offset within the datagram payload', async () => {
    const summary = await replay(
      source([[0, udp('answer: 42')]]),
      source([[0.1, udp('answer: 43')]]),
      new CompareEngine(),
      defaultReplayOptions,
    );
    expect(summary.divergences).toEqual([
      expect.objectContaining({
        connection: { protocol: 'udp', src: '10.0.0.1', srcPort: 5000, dst: '10.0.0.2', dstPort: 53 },
        reason: 'payload',
        offset: 9,
      }),
    ]);
    expect(summary.connections).toEqual([
      {
        connection: 'udp 10.0.0.1:5000 > 10.0.0.2:53',
        protocol: 'udp',
        primary: 1,
        secondary: 1,
        released: 1,
        dropped: 1,
        divergences: 1,
      },
    ]);
    expect(summary.checkpoints.list).toEqual([
      expect.objectContaining({
        index: 1,
        reason: 'payload',
        startedAt: 0.1,
        completedAt: 20.1,
        released: 1,
        dropped: 1,
      }),
    ]);
  });

  it('a lone primary frame times out after compare_timeout and is released by the checkpoint', async () => {
    const summary = await replay(
      source([[0, udp('only here')]]),
      source([]),
      new CompareEngine({ compareTimeoutMs: 500 }),
      {
        ...defaultReplayOptions,
        compareTimeoutMs: 500,
        expiredScanCycleMs: 200,
      },
    );
    // Ticks at 200, 400, 600: the frame is 600 ms old at the third.
    expect(summary.divergences.map((d) => [divergenceVirtualMs(summary, d), d.reason, d.offset])).toEqual([
      [600, 'timeout', null],
    ]);
    expect(summary.checkpoints.list.map((c) => [c.reason, c.completedAt, c.released])).toEqual([['timeout', 620, 1]]);
    expect(summary.compareLatencyMs).toEqual({ count: 1, p50: 620, p99: 620, max: 620 });
    expect(summary.frames.heldAtEnd).toBe(0);
  });
});
