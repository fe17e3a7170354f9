import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import type { Divergence, Packet, Side } from '../../compare/types.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { DivergenceRecorder } from '../../src/capture/divergence-recorder.js';
import { openCaptureFile, readAll } from '../../src/capture/open.js';
import { Tally } from '../../src/replay/tally.js';
import {
  divergenceRecord,
  WINDOW_AFTER,
  WINDOW_BEFORE,
  type DivergenceRecord,
  type FrameWindow,
} from '../../src/stats/divergence-record.js';
import { EventLog } from '../../src/stats/events.js';
import { ColoMetrics } from '../../src/stats/metrics.js';
import { startStatsServer } from '../../src/stats/server.js';
import { buildArp, buildTcp, buildUdp } from '../support/wire-build.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'colo-divergence-record-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const udp = (payload: string, srcPort = 5353): Buffer =>
  buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort, dstPort: 53, payload });
const tcp = (seq: number, payload: string): Buffer =>
  buildTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 40000, seq, ack: 1, flags: TcpFlag.ACK, payload });

/** Pushes one frame per side through a real engine and returns the one divergence it reports. */
function engineDivergence(primary: Buffer, secondary: Buffer, now: number): Divergence {
  const engine = new CompareEngine();
  engine.push('primary', primary, 0, now);
  const decision = engine.push('secondary', secondary, 0, now);
  expect(decision.divergences).toHaveLength(1);
  // Copied out: the engine reuses its Decision.
  return { ...decision.divergences[0] };
}

function packet(side: Side, frame: Buffer, arrivedAt = 0, start = 0): Packet {
  return { frame, start, side, arrivedAt, tag: 0 };
}

/** The byte a window marks, as two hex digits ('' when the frame ended there). */
function marked(w: FrameWindow): string {
  const i = (w.at - w.offset) * 2;
  return w.hex.slice(i, i + 2);
}

describe('divergence record', () => {
  it('is the same in --json, --events, /stats and the pcapng comment', async () => {
    const d = engineDivergence(udp('answer: 1.2.3.4'), udp('answer: 1.2.3.5'), 1_767_225_600_123.25);
    expect(d.reason).toBe('payload');

    // --json: the replay summary's list (the tally builds it), here with no capture origin, as live.
    const tally = new Tally();
    tally.decision({ release: [], drop: [], divergences: [d], malformed: [] }, d.time);
    const fromSummary = tally.counts().divergences[0];

    // --events: one NDJSON line.
    const eventsPath = join(dir, 'events.ndjson');
    const log = await EventLog.open(eventsPath);
    log.divergence(d);
    await log.close();
    const { type, ...fromEvents } = JSON.parse(await readFile(eventsPath, 'utf8')) as DivergenceRecord & {
      type: string;
    };
    expect(type).toBe('divergence');

    // /stats, served over HTTP.
    const metrics = new ColoMetrics();
    metrics.recordDecision({ release: [], drop: [], divergences: [d], malformed: [] });
    const server = await startStatsServer({ host: '127.0.0.1', port: 0, metrics });
    let fromStats: DivergenceRecord;
    try {
      const stats = (await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json()) as {
        divergences: { recent: DivergenceRecord[] };
      };
      expect(stats.divergences.recent).toHaveLength(1);
      fromStats = stats.divergences.recent[0];
    } finally {
      await server.close();
    }

    // The pcapng: the second line of each frame's comment.
    const pcapngPath = join(dir, 'divergences.pcapng');
    const recorder = await DivergenceRecorder.open(pcapngPath);
    recorder.record(d);
    await recorder.close();
    const frames = readAll(openCaptureFile(pcapngPath)).frames;
    expect(frames).toHaveLength(2);
    const fromPcapng = frames.map((f) => JSON.parse(f.comment!.split('\n')[1]) as DivergenceRecord);

    const expected = divergenceRecord(d);
    expect(expected).toMatchObject({
      time: 1_767_225_600_123.25,
      connection: { protocol: 'udp', src: '10.0.0.1', srcPort: 5353, dst: '10.0.0.2', dstPort: 53 },
      reason: 'payload',
      offset: 14,
    });
    for (const output of [fromSummary, fromEvents, fromStats, ...fromPcapng]) expect(output).toEqual(expected);
  });

  it('carries the capture time in replay: the same epoch time in the summary, the event log and the pcapng', async () => {
    const origin = { seconds: 1_767_225_600, nanoseconds: 250_000_000 };
    const originMs = origin.seconds * 1000 + origin.nanoseconds / 1e6;
    const d = engineDivergence(udp('one'), udp('two'), 12.5);
    const tally = new Tally();
    tally.epochOriginMs = originMs;
    tally.decision({ release: [], drop: [], divergences: [d], malformed: [] }, d.time);
    const path = join(dir, 'replay.pcapng');
    const recorder = await DivergenceRecorder.open(path, { clockOrigin: origin });
    recorder.record(d);
    await recorder.close();
    const fromPcapng = JSON.parse(readAll(openCaptureFile(path)).frames[0].comment!.split('\n')[1]) as DivergenceRecord;
    expect(tally.counts().divergences[0].time).toBe(1_767_225_600_262.5);
    expect(fromPcapng).toEqual(tally.counts().divergences[0]);
    expect(divergenceRecord(d, originMs)).toEqual(fromPcapng);
  });

  describe('the hex window', () => {
    it('mid-frame: 16 bytes before and after the differing byte, on both sides', () => {
      const p = udp('x'.repeat(40) + 'A' + 'y'.repeat(40));
      const s = udp('x'.repeat(40) + 'B' + 'y'.repeat(40));
      const record = divergenceRecord(engineDivergence(p, s, 0));
      const at = 42 + 40; // Ethernet 14 + IPv4 20 + UDP 8, then the payload's 41st byte
      expect(record.offset).toBe(40);
      expect(record.window!.primary).toEqual({
        offset: at - WINDOW_BEFORE,
        at,
        hex: p.toString('hex', at - WINDOW_BEFORE, at + 1 + WINDOW_AFTER),
      });
      expect(marked(record.window!.primary!)).toBe('41');
      expect(marked(record.window!.secondary!)).toBe('42');
    });

    it('at the frame end: the last byte differs, the window stops at the frame', () => {
      const p = udp('payload-A');
      const s = udp('payload-B');
      const { primary, secondary } = divergenceRecord(engineDivergence(p, s, 0)).window!;
      expect(primary).toEqual({
        offset: p.length - 1 - WINDOW_BEFORE,
        at: p.length - 1,
        hex: p.toString('hex', -17 + p.length),
      });
      expect(secondary!.hex.endsWith('42')).toBe(true);
    });

    it('past the end of the shorter side (length): its window ends at its frame, `at` is its length', () => {
      const p = udp('abc');
      const s = udp('abcd');
      const record = divergenceRecord(engineDivergence(p, s, 0));
      expect(record).toMatchObject({ reason: 'length', offset: 3 });
      const { primary, secondary } = record.window!;
      expect(primary).toEqual({
        offset: p.length - WINDOW_BEFORE,
        at: p.length,
        hex: p.toString('hex', p.length - 16),
      });
      expect(marked(primary!)).toBe('');
      expect(secondary!.at).toBe(p.length);
      expect(marked(secondary!)).toBe(Buffer.from('d').toString('hex'));
    });

    it('at the frame start: fewer bytes before, the window starts at 0; a vnet header is not counted', () => {
      const arp = (ip: string): Buffer =>
        buildArp({
          operation: 2,
          senderMac: '52:54:00:00:00:01',
          senderIp: ip,
          targetMac: '52:54:00:00:00:02',
          targetIp: '10.0.0.9',
        });
      const p = arp('10.0.0.1');
      const s = Buffer.concat([Buffer.alloc(10, 0xee), arp('10.0.0.1')]);
      s[10 + 14] ^= 0xff; // the ARP body's first byte (hardware type)
      const d: Divergence = {
        time: 0,
        connection: {
          protocol: 'arp',
          family: 0,
          src: '52:54:00:00:00:01',
          dst: '52:54:00:00:00:02',
          srcPort: 0,
          dstPort: 0,
        },
        protocol: 'arp',
        reason: 'payload',
        offset: 0,
        primary: packet('primary', p),
        secondary: packet('secondary', s, 0, 10),
        detail: '',
      };
      const record = divergenceRecord(d);
      expect(record.secondaryLength).toBe(p.length);
      expect(record.window!.primary).toEqual({ offset: 0, at: 14, hex: p.toString('hex', 0, 14 + 1 + WINDOW_AFTER) });
      expect(record.window!.secondary).toEqual({
        offset: 0,
        at: 14,
        hex: s.toString('hex', 10, 10 + 14 + 1 + WINDOW_AFTER),
      });
      expect(marked(record.window!.secondary!)).not.toBe(marked(record.window!.primary!));
    });

    it('TCP with different ISNs and the same segments: the byte the engine found, in each frame', () => {
      const d = engineDivergence(tcp(1000, 'hello world'), tcp(5000, 'hello World'), 0);
      const record = divergenceRecord(d);
      expect(record).toMatchObject({ reason: 'payload', offset: 6 });
      expect(record.window!.primary!.at).toBe(54 + 6);
      expect(record.window!.secondary!.at).toBe(54 + 6);
      expect([marked(record.window!.primary!), marked(record.window!.secondary!)]).toEqual(['77', '57']);
    });

    it('TCP in one sequence space, cut differently: the byte is found by sequence number', () => {
      // As the inline proxy sees it: the secondary's seqs rewritten into the primary's space.
      const d: Divergence = {
        time: 0,
        connection: { protocol: 'tcp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 40000 },
        protocol: 'tcp',
        reason: 'payload',
        offset: 6,
        primary: packet('primary', tcp(1000, 'hello world')),
        secondary: packet('secondary', tcp(1003, 'lo World')),
        detail: '',
      };
      const { primary, secondary } = divergenceRecord(d).window!;
      expect([primary!.at, secondary!.at]).toEqual([54 + 6, 54 + 3]);
      expect([marked(primary!), marked(secondary!)]).toEqual(['77', '57']);
    });

    it('none where no byte differs: a timeout has no window', () => {
      const d: Divergence = {
        time: 0,
        connection: { protocol: 'udp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5353, dstPort: 53 },
        protocol: 'udp',
        reason: 'timeout',
        offset: null,
        primary: packet('primary', udp('late')),
        secondary: null,
        detail: 'primary packet held 3000 ms',
      };
      expect(divergenceRecord(d)).toMatchObject({
        window: null,
        primaryLength: udp('late').length,
        secondaryLength: null,
      });
    });
  });
});
