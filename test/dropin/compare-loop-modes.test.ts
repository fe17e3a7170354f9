import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultModeThresholds, type ModeThresholds, type ProtectionMode } from '../../compare/protection-mode.js';
import { CompareLoop } from '../../proxy/compare-loop.js';
import type { FramedSocket } from '../../proxy/ports/framed-socket.js';
import { silentLogger } from '../../src/log.js';
import { MetricName } from '../../src/stats/metric-names.js';
import { ColoMetrics } from '../../src/stats/metrics.js';
import { divergence, fakeOutdev, packet, ScriptedEngine } from './loop-support.js';

/**
 * The drop-in loop's protection modes (proxy/loop-protection.ts) on a scripted engine, fake timers and the
 * faked Date.now as the loop's clock: periodic holds output for the checkpoint, hybrid switches.
 */

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_000_000);
});
afterEach(() => vi.useRealTimers());

interface Setup {
  mode: ProtectionMode;
  thresholds?: Partial<ModeThresholds>;
  maxFrames?: number;
  scanMs?: number;
}

function setup({ mode, thresholds = {}, maxFrames = 1000, scanMs = 1000 }: Setup) {
  const engine = new ScriptedEngine();
  const requests: number[] = [];
  const metrics = new ColoMetrics();
  const loop = new CompareLoop({
    engine,
    compareTimeoutMs: 3000,
    expiredScanCycleMs: scanMs,
    vnetHdr: false,
    notifier: { requestCheckpoint: () => requests.push(Date.now()) },
    logger: silentLogger,
    observer: metrics,
    clock: () => Date.now(),
    protection: {
      mode,
      thresholds: { ...defaultModeThresholds, ...thresholds },
      bounds: { maxFrames, maxBytes: 1 << 30 },
    },
  });
  const out = fakeOutdev();
  const input = { pause() {}, resume() {}, on() {} } as unknown as FramedSocket;
  loop.start({ primary: input, secondary: input, outdev: out.socket });
  let arrivals = 0;
  /** One primary frame in its own read chunk; the engine releases `release` for it. */
  const primary = (release: ReturnType<typeof packet>[] = [], divergences: ReturnType<typeof divergence>[] = []) => {
    arrivals++;
    engine.script.push({ release, divergences });
    const sink = loop.sinkFor('primary');
    sink.onFrame(Buffer.from(`in-${arrivals}`), 0);
    sink.onChunkEnd();
    return arrivals;
  };
  const sent = () => out.sink.frames.map((f) => f.frame.toString());
  return { engine, loop, out, requests, metrics, primary, sent };
}

const at = (ms: number) => 1_000_000 + ms;

describe('CompareLoop protection modes', () => {
  it('periodic: holds released frames until COLO_CHECKPOINT, then releases in order only those from before the request', () => {
    const { loop, requests, primary, sent, engine } = setup({ mode: 'periodic', thresholds: { periodMs: 100 } });
    primary([packet('a', 1)]);
    primary([packet('b', 2)]);
    expect(sent()).toEqual([]);
    expect(loop.protectionStatus()).toMatchObject({ active: 'periodic', heldFrames: 2 });
    vi.advanceTimersByTime(100);
    expect(requests).toEqual([at(100)]);
    primary([packet('c', 3)]); // after the request: the next checkpoint's
    // The engine's flush releases a frame that arrived before the request (2), but after c in output order:
    // it waits behind c, so output order is kept.
    engine.script.push({ release: [packet('d', 2)] });
    loop.checkpointDone();
    expect(sent()).toEqual(['a', 'b']);
    expect(loop.protectionStatus().heldFrames).toBe(2);
    expect(loop.counters.periodicReleased).toBe(2);
    vi.advanceTimersByTime(100);
    expect(requests).toEqual([at(100), at(200)]);
    loop.checkpointDone();
    expect(sent()).toEqual(['a', 'b', 'c', 'd']);
    expect(loop.counters).toMatchObject({ released: 4, periodicRequestsSent: 2, checkpointRequestsSent: 2 });
    loop.stop();
  });

  it('periodic: one request per period, none while one is outstanding, the next a period after the last started', () => {
    const { loop, requests } = setup({ mode: 'periodic', thresholds: { periodMs: 100 } });
    vi.advanceTimersByTime(100);
    expect(requests).toEqual([at(100)]);
    vi.advanceTimersByTime(250); // the checkpoint takes longer than a period: no second request meanwhile
    expect(requests).toEqual([at(100)]);
    loop.checkpointDone(); // at 350: the next was due at 200, so it goes at once
    vi.advanceTimersByTime(0);
    expect(requests).toEqual([at(100), at(350)]);
    vi.advanceTimersByTime(10);
    loop.checkpointDone(); // at 360
    vi.advanceTimersByTime(89);
    expect(requests).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(requests).toEqual([at(100), at(350), at(450)]);
    loop.stop();
    vi.advanceTimersByTime(1000);
    expect(requests).toHaveLength(3);
  });

  it('periodic: divergences are background (counted, no request); pass-through frames go out at once', () => {
    const { loop, requests, primary, sent } = setup({ mode: 'periodic', thresholds: { periodMs: 100 } });
    primary([packet('held', 1), packet('rule', 1, true)], [divergence('payload')]);
    expect(sent()).toEqual(['rule']);
    expect(requests).toEqual([]);
    expect(loop.counters).toMatchObject({ divergences: 1, backgroundDivergences: 1, checkpointRequestsSent: 0 });
    vi.advanceTimersByTime(100);
    loop.checkpointDone();
    expect(sent()).toEqual(['rule', 'held']);
    loop.stop();
  });

  it('periodic: a hold past its bound is released before its checkpoint, counted, never dropped', () => {
    const { loop, primary, sent } = setup({ mode: 'periodic', maxFrames: 2 });
    primary([packet('a', 1)]);
    primary([packet('b', 2)]);
    expect(sent()).toEqual([]);
    primary([packet('c', 3)]);
    expect(sent()).toEqual(['a', 'b', 'c']);
    expect(loop.counters).toMatchObject({ periodicBoundReleases: 1, periodicBoundReleased: 3 });
    loop.stop();
  });

  it('shutdown releases the held frames first, then what the engine held', () => {
    const { loop, primary, sent, engine } = setup({ mode: 'periodic' });
    primary([packet('a', 1)]);
    engine.script.push({ release: [packet('b', 2)] });
    expect(loop.shutdown()).toEqual({ flushedFrames: 2, droppedFrames: 0 });
    expect(sent()).toEqual(['a', 'b']);
  });

  it('hybrid: a stream of divergence checkpoints switches to periodic, calm switches back; counted in metrics', async () => {
    const thresholds = { periodMs: 100, windowMs: 500, maxDivergenceCheckpoints: 2, calmMs: 1000, calmDivergences: 1 };
    const { loop, requests, primary, sent, metrics } = setup({ mode: 'hybrid', thresholds });
    let tag = 0;
    for (let i = 0; i < 3; i++) {
      tag = primary([], [divergence('payload')]);
      vi.advanceTimersByTime(20);
      loop.checkpointDone();
      vi.advanceTimersByTime(20);
    }
    expect(requests).toHaveLength(3);
    expect(loop.protectionStatus().active).toBe('periodic');
    expect(loop.counters.modeSwitches).toBe(1);
    // Periodic: output held, divergences only counted.
    tag = primary([packet('held', tag + 1)], [divergence('payload')]);
    expect(sent()).toEqual([]);
    expect(loop.counters.backgroundDivergences).toBe(1);
    // Answer every periodic request until the background comparison has been calm for Q.
    for (let step = 0; step < 300 && loop.protectionStatus().active === 'periodic'; step++) {
      const before = requests.length;
      vi.advanceTimersByTime(10);
      if (requests.length > before) loop.checkpointDone();
    }
    const status = loop.protectionStatus();
    expect(status.active).toBe('compare');
    expect(status.switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['compare', 'periodic', 'divergence-rate'],
      ['periodic', 'compare', 'calm'],
    ]);
    expect(sent()).toEqual(['held']);
    expect(status.heldFrames).toBe(0);
    // Compare again: a release goes straight out, a divergence asks for a checkpoint.
    primary([packet('direct', tag + 1)]);
    expect(sent()).toEqual(['held', 'direct']);
    const before = requests.length;
    primary([], [divergence('length')]);
    expect(requests).toHaveLength(before + 1);
    const metric = await metrics.registry.getSingleMetric(MetricName.modeSwitches)!.get();
    const byKey = Object.fromEntries(
      metric.values.map((v) => [`${v.labels.from}>${v.labels.to}:${v.labels.reason}`, v.value]),
    );
    expect(byKey).toEqual({ 'compare>periodic:divergence-rate': 1, 'periodic>compare:calm': 1 });
    loop.stop();
  });

  it('hybrid: frames still held when it switches back wait for a checkpoint, which is asked for at once', () => {
    const thresholds = { periodMs: 300, windowMs: 500, maxDivergenceCheckpoints: 0, calmMs: 400, calmDivergences: 1 };
    const { loop, requests, primary, sent } = setup({ mode: 'hybrid', thresholds, scanMs: 100 });
    primary([], [divergence('payload')]); // more than 0 divergence checkpoints: periodic at once
    expect(loop.protectionStatus().active).toBe('periodic');
    vi.advanceTimersByTime(10);
    loop.checkpointDone(); // the divergence's checkpoint, at 10
    primary([packet('held', 2)]);
    vi.advanceTimersByTime(300); // the periodic request at 310 (a period after the last started, at 0)
    expect(requests).toEqual([at(0), at(300)]);
    loop.checkpointDone(); // at 310: releases 'held'; 310 in periodic is less than Q
    expect(sent()).toEqual(['held']);
    primary([packet('late', 3)]);
    vi.advanceTimersByTime(90); // the scan at 400 finds Q passed and calm: compare, with 'late' still held
    expect(loop.protectionStatus()).toMatchObject({ active: 'compare', heldFrames: 1 });
    expect(requests).toEqual([at(0), at(300), at(400)]);
    primary([packet('compared', 4)]); // compared, but queued behind 'late' to keep the order
    expect(sent()).toEqual(['held']);
    loop.checkpointDone();
    expect(sent()).toEqual(['held', 'late', 'compared']);
    primary([packet('direct', 5)]);
    expect(sent()).toEqual(['held', 'late', 'compared', 'direct']);
    loop.stop();
  });

  it('compare mode never holds, and periodic or hybrid without a notifier is refused', () => {
    const { loop, primary, sent } = setup({ mode: 'compare' });
    primary([packet('a', 1)]);
    expect(sent()).toEqual(['a']);
    expect(loop.protectionStatus()).toMatchObject({ mode: 'compare', active: 'compare', heldFrames: 0 });
    loop.stop();
    const options = {
      engine: new ScriptedEngine(),
      compareTimeoutMs: 3000,
      expiredScanCycleMs: 1000,
      vnetHdr: false,
      notifier: null,
      logger: silentLogger,
    };
    const bounds = { maxFrames: 1, maxBytes: 1 };
    for (const mode of ['periodic', 'hybrid'] as const) {
      expect(
        () => new CompareLoop({ ...options, protection: { mode, thresholds: defaultModeThresholds, bounds } }),
      ).toThrow(/needs a notifier/);
    }
  });
});
