import { describe, expect, it } from 'vitest';
import { buildUdp } from '../support/wire-build.js';
import type { Decision, Divergence, Packet, Side } from '../../compare/types.js';
import { openCaptureBuffer } from '../../src/capture/open.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { BufferSink } from '../../src/capture/sink.js';
import type { ReplayEngine } from '../../src/replay/engine-port.js';
import { defaultReplayOptions, type ReplayOptions } from '../../src/replay/options.js';
import { replay, type ClockJump, type ReplaySource } from '../../src/replay/replay.js';

/**
 * An engine whose decisions are scripted by the frames themselves, so the tests see only the replay's
 * clock: every frame is held until flush(); a payload starting with "D" diverges; every call is logged.
 */
class ScriptedEngine implements ReplayEngine {
  readonly calls: string[] = [];
  private held: Packet[] = [];
  private readonly decision = {
    release: [] as Packet[],
    drop: [] as Packet[],
    divergences: [] as Divergence[],
    malformed: [],
  };

  private clear(): ScriptedEngine['decision'] & Decision {
    this.decision.release = [];
    this.decision.drop = [];
    this.decision.divergences = [];
    return this.decision;
  }

  push(side: Side, frame: Buffer, start: number, now: number, tag = 0): Decision {
    const d = this.clear();
    const packet: Packet = { frame, start, side, arrivedAt: now, tag };
    this.held.push(packet);
    this.calls.push(`push ${side} ${now}`);
    // UDP payload starts at 14 + 20 + 8.
    if (frame[42] === 0x44) {
      d.divergences.push({
        time: now,
        connection: { protocol: 'udp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2 },
        protocol: 'udp',
        reason: 'payload',
        offset: 0,
        primary: side === 'primary' ? packet : null,
        secondary: side === 'secondary' ? packet : null,
        detail: 'scripted',
      });
    }
    return d;
  }

  tick(now: number): Decision {
    this.calls.push(`tick ${now}`);
    return this.clear();
  }

  flush(now: number): Decision {
    const d = this.clear();
    this.calls.push(`flush ${now}`);
    for (const p of this.held) (p.side === 'primary' ? d.release : d.drop).push(p);
    this.held = [];
    return d;
  }
}

function frame(payload: string): Buffer {
  return buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, payload });
}

/** A capture of frames at the given virtual ms (from 1767225600 s). */
function source(frames: [ms: number, payload: string][]): ReplaySource {
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { nanosecond: true });
  for (const [ms, payload] of frames) {
    writer.write(1767225600 + Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6), frame(payload));
  }
  writer.flush();
  return { reader: openCaptureBuffer(sink.toBuffer()), interface: null, size: 0 };
}

function options(o: Partial<ReplayOptions>): ReplayOptions {
  return { ...defaultReplayOptions, ...o };
}

describe('replay virtual clock', () => {
  it('merges both captures in timestamp order, primary first on a tie', async () => {
    const engine = new ScriptedEngine();
    await replay(
      source([
        [0, 'a'],
        [5, 'b'],
      ]),
      source([
        [0, 'a'],
        [3, 'b'],
      ]),
      engine,
      options({ checkpointTimerMs: 0 }),
    );
    expect(engine.calls.filter((c) => c.startsWith('push'))).toEqual([
      'push primary 0',
      'push secondary 0',
      'push secondary 3',
      'push primary 5',
    ]);
  });

  it('ticks every expired_scan_cycle while frames are held, and drains until compare_timeout has passed', async () => {
    const engine = new ScriptedEngine();
    const summary = await replay(
      source([
        [0, 'a'],
        [2500, 'b'],
      ]),
      source([]),
      engine,
      options({ expiredScanCycleMs: 1000, compareTimeoutMs: 3000, checkpointTimerMs: 0 }),
    );
    expect(engine.calls).toEqual([
      'push primary 0',
      'tick 1000',
      'tick 2000',
      'push primary 2500',
      'tick 3000',
      'tick 4000',
      'tick 5000',
      'tick 6000',
    ]);
    expect(summary.frames.heldAtEnd).toBe(2);
    expect(summary.frames.heldAtEndBySide).toEqual({ primary: 2, secondary: 0 });
  });

  it('skips ticks while nothing is held', async () => {
    const engine = new ScriptedEngine();
    await replay(
      source([
        [0, 'D'],
        [100, 'x'],
        [60_000, 'y'],
      ]),
      source([]),
      engine,
      options({ checkpointTimerMs: 0, checkpointDurationMs: 200 }),
    );
    // The divergence's checkpoint flushes everything at 200 ms; nothing is held until 60 s.
    expect(engine.calls.slice(0, 4)).toEqual(['push primary 0', 'push primary 100', 'flush 200', 'push primary 60000']);
  });

  it('fires CHKPOINT_TIMER, re-armed when any checkpoint starts', async () => {
    const engine = new ScriptedEngine();
    const summary = await replay(
      source([
        [0, 'a'],
        [5000, 'D'],
        [25_000, 'b'],
      ]),
      source([]),
      engine,
      options({
        checkpointTimerMs: 10_000,
        checkpointDurationMs: 20,
        expiredScanCycleMs: 100_000,
        compareTimeoutMs: 1,
      }),
    );
    expect(summary.checkpoints.list.map((c) => [c.reason, c.startedAt, c.completedAt])).toEqual([
      ['payload', 5000, 5020],
      ['timer', 15_000, 15_020],
      ['timer', 25_000, 25_020],
    ]);
    expect(summary.checkpoints.byReason).toEqual({ payload: 1, timer: 2 });
    expect(summary.checkpoints.total).toBe(3);
  });

  it('coalesces requests: one checkpoint in flight, at most one pending that collects the rest', async () => {
    const engine = new ScriptedEngine();
    const summary = await replay(
      source([
        [100, 'D'],
        [105, 'D'],
        [110, 'D'],
        [115, 'D'],
      ]),
      source([]),
      engine,
      options({ checkpointTimerMs: 0, checkpointDurationMs: 20 }),
    );
    expect(summary.divergences).toHaveLength(4);
    expect(
      summary.checkpoints.list.map((c) => [c.requestedAt, c.startedAt, c.completedAt, c.requests, c.released]),
    ).toEqual([
      // Frames that arrive while a checkpoint is in flight are held and go out with its flush.
      [0, 0, 20, 1, 4],
      [5, 20, 40, 3, 0],
    ]);
    expect(engine.calls).toContain('flush 20');
    expect(engine.calls).toContain('flush 40');
    expect(summary.frames).toMatchObject({ primary: 4, released: 4, heldAtEnd: 0 });
  });

  it('counts a timestamp going backwards and replays that frame at the current time', async () => {
    const engine = new ScriptedEngine();
    const summary = await replay(
      source([
        [0, 'a'],
        [50, 'b'],
        [20, 'c'],
      ]),
      source([]),
      engine,
      options({ checkpointTimerMs: 0 }),
    );
    expect(summary.frames.outOfOrder).toBe(1);
    expect(engine.calls.filter((c) => c.startsWith('push'))).toEqual([
      'push primary 0',
      'push primary 50',
      'push primary 50',
    ]);
  });

  it('--speed 1 paces by the wall clock and changes nothing in the result', async () => {
    const frames: [number, string][] = [
      [0, 'a'],
      [150, 'D'],
      [300, 'b'],
    ];
    const fast = await replay(source(frames), source(frames), new ScriptedEngine(), options({}));
    const started = performance.now();
    const paced = await replay(source(frames), source(frames), new ScriptedEngine(), options({ speed: 1 }));
    // A lower bound only: pacing may run late on a loaded machine, never early.
    expect(performance.now() - started).toBeGreaterThanOrEqual(295);
    expect({ ...paced, options: null }).toEqual({ ...fast, options: null });
  });

  it('reports progress and hands every divergence and checkpoint to the hooks', async () => {
    const seen: string[] = [];
    await replay(
      source([
        [0, 'D'],
        [1, 'x'],
      ]),
      source([[0, 'y']]),
      new ScriptedEngine(),
      options({ checkpointTimerMs: 0 }),
      {
        progressEvery: 1,
        onStart: (origin) => seen.push(`start ${origin?.seconds}`),
        onDivergence: (d) => seen.push(`divergence ${d.reason}`),
        onCheckpoint: (c) => seen.push(`checkpoint ${c.reason} ${c.completedAt}`),
        onProgress: (p) => seen.push(`progress ${p.frames}`),
      },
    );
    expect(seen).toEqual([
      'start 1767225600',
      'divergence payload',
      'progress 1',
      'progress 2',
      'progress 3',
      'checkpoint payload 20',
      'progress 3',
    ]);
  });

  it('fires CHKPOINT_TIMER at most once in a gap between frames: the rest of the gap is one jump', async () => {
    const engine = new ScriptedEngine();
    const day = 86_400_500;
    const jumps: ClockJump[] = [];
    const summary = await replay(
      source([
        [0, 'a'],
        [5000, 'b'],
        [day, 'c'],
        [day + 1000, 'd'],
      ]),
      source([]),
      engine,
      options({ checkpointTimerMs: 10_000, checkpointDurationMs: 20 }),
      { onJump: (jump) => jumps.push(jump) },
    );
    // One timer checkpoint in the day-long gap (it flushes what is held), one at the end: not 8,641.
    expect(summary.checkpoints.list.map((c) => [c.reason, c.startedAt])).toEqual([['timer', 10_000]]);
    expect(jumps).toEqual([{ from: 10_020, to: day, timersSkipped: 8639 }]);
    expect(summary.clock).toEqual({
      jumps: 1,
      jumpedMs: day - 10_020,
      largestJumpMs: day - 10_020,
      timersSkipped: jumps[0].timersSkipped,
    });
    // The timer keeps its phase across the jump (next due at 86,410,000): no firing by the last frame.
    expect(summary.frames).toMatchObject({ primary: 4, released: 2, heldAtEnd: 2 });
    expect(engine.calls.filter((c) => c.startsWith('flush'))).toEqual(['flush 10020']);
  });

  it('replays a frame stamped 0xFFFFFFFF seconds (year 2106) after a 2026 capture in one jump', async () => {
    const sink = new BufferSink();
    const writer = new PcapWriter(sink, { nanosecond: true });
    writer.write(1767225600, 0, frame('a'));
    writer.write(1767225600, 5_000_000, frame('b'));
    writer.write(0xffffffff, 0, frame('c'));
    writer.flush();
    const far = { reader: openCaptureBuffer(sink.toBuffer()), interface: null, size: 0 };
    const started = performance.now();
    const summary = await replay(far, source([]), new ScriptedEngine(), options({ expiredScanCycleMs: 1 }));
    expect(performance.now() - started).toBeLessThan(5000);
    expect(summary.capture.lastFrameMs).toBe((0xffffffff - 1767225600) * 1000);
    expect(summary.checkpoints.total).toBe(1);
    expect(summary.clock.jumps).toBe(1);
    expect(summary.clock.timersSkipped).toBeGreaterThan(250_000_000);
  });

  it('--speed waits through a long gap only as long as the clock has work in it', async () => {
    const frames: [number, string][] = [
      [0, 'a'],
      [86_400_000, 'b'],
    ];
    const fast = await replay(source(frames), source([]), new ScriptedEngine(), options({}));
    const started = performance.now();
    // Real time at 100x would be 864 s; the wait is max(timer, timeout + cycle) + duration = 10,020 ms / 100.
    const paced = await replay(source(frames), source([]), new ScriptedEngine(), options({ speed: 100 }));
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(95);
    expect(waited).toBeLessThan(5000);
    expect({ ...paced, options: null }).toEqual({ ...fast, options: null });
  });

  it('stops ticking in a gap once every held frame has had its timeout', async () => {
    const engine = new ScriptedEngine();
    const summary = await replay(
      source([
        [0, 'a'],
        [100_000, 'b'],
      ]),
      source([]),
      engine,
      options({ checkpointTimerMs: 0, compareTimeoutMs: 3000, expiredScanCycleMs: 1000 }),
    );
    // The scripted engine never expires anything: without the bound it would tick 100 times in the gap.
    expect(engine.calls.slice(0, 6)).toEqual([
      'push primary 0',
      'tick 1000',
      'tick 2000',
      'tick 3000',
      'tick 4000',
      'push primary 100000',
    ]);
    expect(summary.frames.heldAtEnd).toBe(2);
  });
});
