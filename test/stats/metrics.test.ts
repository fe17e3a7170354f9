import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { CompareEngine } from '../../compare/engine.js';
import type { Decision, Divergence, Packet, Side } from '../../compare/types.js';
import { buildUdp } from '../support/wire-build.js';
import {
  emptyDurations,
  type CheckpointOutcome,
  type CheckpointOutcomeLabel,
  type PhaseDurations,
} from '../../src/checkpoint/engine.js';
import { LocalDriverError } from '../../src/checkpoint/errors.js';
import { MetricName, metricNames } from '../../src/stats/metric-names.js';
import { ColoMetrics } from '../../src/stats/metrics.js';

function packet(side: Side, arrivedAt: number, length = 60): Packet {
  return { frame: Buffer.alloc(length), start: 0, side, arrivedAt, tag: 0 };
}

function divergence(reason: Divergence['reason'], protocol: Divergence['protocol']): Divergence {
  return {
    time: 0,
    connection: { protocol, family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 40000 },
    protocol,
    reason,
    offset: reason === 'payload' ? 17 : null,
    primary: null,
    secondary: null,
    detail: '',
  };
}

function decision(partial: Partial<Decision>): Decision {
  return { release: [], drop: [], divergences: [], malformed: [], ...partial };
}

/** A finished checkpoint with the given outcome label and the phases it reached (ms). */
function finished(label: CheckpointOutcomeLabel, phases: Partial<PhaseDurations>): CheckpointOutcome {
  const base = { reason: 'payload', reasons: ['payload'], durations: { ...emptyDurations(), ...phases } };
  if (label === 'ok') return { ...base, ok: true, stateBytes: 1 };
  const error = new LocalDriverError('save', new Error('disk full'));
  return { ...base, ok: false, error, secondaryLost: label === 'failed' };
}

/** The value of one series in Prometheus text, or undefined when absent. */
function seriesValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('ColoMetrics', () => {
  it('registers every named metric in its own registry, not the global one', async () => {
    const a = new ColoMetrics();
    const b = new ColoMetrics();
    const names = (await a.registry.getMetricsAsJSON()).map((m) => m.name).sort();
    expect(names).toEqual([...metricNames].sort());
    a.recordFramesIn('primary', 3);
    expect(b.snapshot().frames.in.primary).toBe(0);
  });

  it('uses a registry it is given', async () => {
    const registry = new Registry();
    new ColoMetrics(registry);
    expect(await registry.getSingleMetric(MetricName.divergences)).toBeDefined();
  });

  it('counts a decision: releases, drops, divergences by reason and protocol, malformed by side and reason', async () => {
    const m = new ColoMetrics();
    m.recordDecision(
      decision({
        release: [packet('primary', 0), packet('primary', 0)],
        drop: [packet('secondary', 0)],
        divergences: [divergence('payload', 'tcp'), divergence('payload', 'tcp'), divergence('timeout', 'udp')],
        malformed: [
          { side: 'secondary', reason: 'truncated-tcp', frame: Buffer.alloc(0) },
          { side: 'primary', reason: 'empty', frame: Buffer.alloc(0) },
        ],
      }),
    );
    m.recordDecision(decision({ release: [packet('primary', 0)], drop: [packet('secondary', 0)] }));

    const s = m.snapshot();
    expect(s.frames.released).toBe(3);
    expect(s.frames.secondaryDropped).toBe(2);
    expect(s.divergences).toEqual({
      total: 3,
      byReason: { payload: 2, timeout: 1 },
      byProtocol: { tcp: 2, udp: 1 },
      recent: expect.any(Array),
    });
    expect(s.frames.malformed).toEqual({
      total: 2,
      bySide: { primary: 1, secondary: 1 },
      byReason: { empty: 1, 'truncated-tcp': 1 },
    });

    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_frames_released_total')).toBe(3);
    expect(seriesValue(text, 'colo_secondary_dropped_total')).toBe(2);
    expect(seriesValue(text, 'colo_divergences_total{reason="payload",protocol="tcp"}')).toBe(2);
    expect(seriesValue(text, 'colo_divergences_total{reason="timeout",protocol="udp"}')).toBe(1);
    expect(seriesValue(text, 'colo_malformed_frames_total{side="secondary",reason="truncated-tcp"}')).toBe(1);
  });

  it('publishes increments made between scrapes exactly once', async () => {
    const m = new ColoMetrics();
    m.recordFramesIn('primary', 5);
    m.recordFramesIn('secondary');
    let text = await m.metricsText();
    expect(seriesValue(text, 'colo_frames_in_total{side="primary"}')).toBe(5);
    expect(seriesValue(text, 'colo_frames_in_total{side="secondary"}')).toBe(1);
    text = await m.metricsText();
    expect(seriesValue(text, 'colo_frames_in_total{side="primary"}')).toBe(5);
    m.recordFramesIn('primary', 2);
    m.recordDecision(decision({ divergences: [divergence('payload', 'tcp')] }));
    m.recordDecision(decision({ divergences: [divergence('payload', 'tcp')] }));
    text = await m.metricsText();
    expect(seriesValue(text, 'colo_frames_in_total{side="primary"}')).toBe(7);
    expect(seriesValue(text, 'colo_divergences_total{reason="payload",protocol="tcp"}')).toBe(2);
  });

  it('observes hold time of released frames when given the clock', async () => {
    const m = new ColoMetrics();
    m.recordDecision(decision({ release: [packet('primary', 1000), packet('primary', 1004)] }), 1010);
    expect(m.snapshot().compareLatency).toEqual({ count: 2, meanMs: 8 });
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_compare_latency_seconds_count')).toBe(2);
    expect(seriesValue(text, 'colo_compare_latency_seconds_bucket{le="0.005"}')).toBe(0);
    expect(seriesValue(text, 'colo_compare_latency_seconds_bucket{le="0.01"}')).toBe(2);
    m.recordDecision(decision({ release: [packet('primary', 0)] }));
    expect(m.snapshot().compareLatency.count).toBe(2);
  });

  it('counts checkpoint requests and outcomes, and observes phase durations in seconds', async () => {
    const m = new ColoMetrics();
    m.recordCheckpointRequest('payload');
    m.recordCheckpointRequest('timer');
    m.recordCheckpointRequest('timer');
    m.checkpoint(finished('ok', { suspend: 2, save: 30, transfer: 40, load: 20, total: 92 }));
    m.checkpoint(finished('aborted', { suspend: 1 }));
    const s = m.snapshot();
    expect(s.checkpoints.requests).toEqual({ total: 3, byReason: { payload: 1, timer: 2 } });
    expect(s.checkpoints.completed).toEqual({ ok: 1, failed: 0, aborted: 1 });
    expect(s.checkpoints.lastPhasesMs).toEqual({ suspend: 1 });

    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_checkpoint_requests_total{reason="timer"}')).toBe(2);
    expect(seriesValue(text, 'colo_checkpoints_total{outcome="ok"}')).toBe(1);
    expect(seriesValue(text, 'colo_checkpoints_total{outcome="failed"}')).toBe(0);
    expect(seriesValue(text, 'colo_checkpoint_phase_seconds_count{phase="suspend"}')).toBe(2);
    expect(seriesValue(text, 'colo_checkpoint_phase_seconds_sum{phase="total"}')).toBeCloseTo(0.092, 9);
    expect(seriesValue(text, 'colo_checkpoint_phase_seconds_count{phase="load"}')).toBe(1);
  });

  it('counts domain calls into the same series a decision feeds: divergence, released, dropped', async () => {
    const m = new ColoMetrics();
    m.divergence(divergence('payload', 'tcp'));
    m.released(4);
    m.dropped(3);
    m.released(0);
    const s = m.snapshot();
    expect(s.divergences).toEqual({
      total: 1,
      byReason: { payload: 1 },
      byProtocol: { tcp: 1 },
      recent: expect.any(Array),
    });
    expect(s.frames.released).toBe(4);
    expect(s.frames.secondaryDropped).toBe(3);
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_divergences_total{reason="payload",protocol="tcp"}')).toBe(1);
    expect(seriesValue(text, 'colo_frames_released_total')).toBe(4);
    expect(seriesValue(text, 'colo_secondary_dropped_total')).toBe(3);
  });

  it('labels a checkpoint by its outcome: ok, aborted (the secondary stayed), failed (it was lost); resume has no series', async () => {
    const m = new ColoMetrics();
    m.checkpoint(finished('ok', { suspend: 1, resume: 4, total: 9 }));
    m.checkpoint(finished('aborted', { suspend: 1 }));
    m.checkpoint(finished('aborted', {}));
    m.checkpoint(finished('failed', {}));
    expect(m.snapshot().checkpoints.completed).toEqual({ ok: 1, failed: 1, aborted: 2 });
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_checkpoints_total{outcome="aborted"}')).toBe(2);
    expect(seriesValue(text, 'colo_checkpoints_total{outcome="failed"}')).toBe(1);
    expect(text).not.toContain('phase="resume"');
  });

  it('ignores phase durations that are not finite non-negative numbers', () => {
    const m = new ColoMetrics();
    m.checkpoint(finished('failed', { save: Number.NaN, load: -1 }));
    expect(m.snapshot().checkpoints.lastPhasesMs).toBeNull();
    expect(m.snapshot().checkpoints.completed.failed).toBe(1);
  });

  it('reports mode as exactly one gauge at 1', async () => {
    const m = new ColoMetrics();
    m.setMode('solo');
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_mode{mode="solo"}')).toBe(1);
    expect(seriesValue(text, 'colo_mode{mode="protected"}')).toBe(0);
    expect(seriesValue(text, 'colo_mode{mode="failover"}')).toBe(0);
    expect(seriesValue(text, 'colo_mode{mode="unprotected"}')).toBe(0);
    expect(m.snapshot().mode).toBe('solo');
  });

  it('reports the gauges last set', async () => {
    const m = new ColoMetrics();
    m.setHeld(4, 6000);
    m.setQueueDepth('primary', 7);
    m.setQueueDepth('secondary', 2);
    m.setConnections(3);
    m.setHeld(1, 60);
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_held_frames')).toBe(1);
    expect(seriesValue(text, 'colo_held_bytes')).toBe(60);
    expect(seriesValue(text, 'colo_queue_depth{side="primary"}')).toBe(7);
    expect(seriesValue(text, 'colo_connections')).toBe(3);
    const s = m.snapshot();
    expect(s.held).toEqual({ frames: 1, bytes: 60 });
    expect(s.queueDepth).toEqual({ primary: 7, secondary: 2 });
  });

  it('counts malformed frames rejected before the engine', () => {
    const m = new ColoMetrics();
    m.recordMalformed('primary', 'empty', 2);
    expect(m.snapshot().frames.malformed).toEqual({
      total: 2,
      bySide: { primary: 2, secondary: 0 },
      byReason: { empty: 2 },
    });
  });

  it('gives a snapshot that survives a JSON round trip unchanged', () => {
    const m = new ColoMetrics();
    m.recordFramesIn('primary', 1);
    m.checkpoint(finished('ok', { total: 5 }));
    const s = m.snapshot();
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
});

describe('ColoMetrics with the comparison engine', () => {
  it('counts what the engine decided: the same totals as the engine itself', () => {
    const engine = new CompareEngine();
    const metrics = new ColoMetrics();
    const push = (side: Side, frame: Buffer, now: number): void => {
      metrics.recordFramesIn(side, 1);
      metrics.recordDecision(engine.push(side, frame, 0, now), now);
    };
    const udp = (payload: string, srcPort: number) =>
      buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort, dstPort: 53, payload });
    // Two matching datagrams, one that differs, one malformed frame on the secondary side.
    push('primary', udp('same-1', 1000), 1);
    push('secondary', udp('same-1', 1000), 2);
    push('primary', udp('same-2', 1001), 3);
    push('secondary', udp('same-2', 1001), 4);
    push('primary', udp('answer-A', 1002), 5);
    push('secondary', udp('answer-B', 1002), 6);
    push('secondary', Buffer.alloc(10), 7);
    metrics.recordDecision(engine.flush(30), 30);

    const s = metrics.snapshot();
    const e = engine.stats();
    expect(s.frames.in).toEqual({ primary: 3, secondary: 4 });
    expect(s.frames.released).toBe(e.releasedPackets);
    expect(s.frames.secondaryDropped).toBe(e.droppedPackets);
    expect(s.frames.released).toBe(3);
    expect(s.frames.secondaryDropped).toBe(3);
    expect(s.frames.malformed.total).toBe(e.malformedPackets);
    expect(s.frames.malformed.bySide).toEqual({ primary: 0, secondary: 1 });
    expect(s.divergences).toEqual({
      total: 1,
      byReason: { payload: 1 },
      byProtocol: { udp: 1 },
      recent: expect.any(Array),
    });
    expect(s.compareLatency.count).toBe(3);
  });

  it('exports the build as colo_build_info{version,node} = 1', async () => {
    const text = await new ColoMetrics().metricsText();
    expect(seriesValue(text, `colo_build_info{version="${packageJson.version}",node="${process.versions.node}"}`)).toBe(
      1,
    );
  });

  it('counts kernel ring drops per port role, exactly across scrapes', async () => {
    const m = new ColoMetrics();
    m.recordCaptureDrops('primary', 3);
    expect(seriesValue(await m.metricsText(), 'colo_capture_drops_total{role="primary"}')).toBe(3);
    m.recordCaptureDrops('primary', 2);
    m.recordCaptureDrops('secondary', 1);
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_capture_drops_total{role="primary"}')).toBe(5);
    expect(seriesValue(text, 'colo_capture_drops_total{role="secondary"}')).toBe(1);
  });

  it('shows each named peer as connected (1) or not (0), following the last call', async () => {
    const m = new ColoMetrics();
    m.setPeerConnected('outdev', false);
    m.setPeerConnected('notify-dev', true);
    expect(seriesValue(await m.metricsText(), 'colo_peer_connected{peer="outdev"}')).toBe(0);
    m.setPeerConnected('outdev', true);
    m.setPeerConnected('notify-dev', false);
    const text = await m.metricsText();
    expect(seriesValue(text, 'colo_peer_connected{peer="outdev"}')).toBe(1);
    expect(seriesValue(text, 'colo_peer_connected{peer="notify-dev"}')).toBe(0);
  });

  it('adds the process and Node.js metrics only when asked, once however often asked', async () => {
    const m = new ColoMetrics();
    expect(await m.metricsText()).not.toContain('process_cpu_user_seconds_total');
    m.collectProcessMetrics();
    m.collectProcessMetrics();
    const text = await m.metricsText();
    // CPU counts from the call on, so it may still read 0; the heap is never empty.
    expect(seriesValue(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(seriesValue(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });
});
