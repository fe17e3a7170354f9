import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import packageJson from '../../package.json' with { type: 'json' };
import type { ModeSwitch } from '../../compare/protection-mode.js';
import type { Decision, Divergence, Side } from '../../compare/types.js';
import type { Mode } from '../../proxy/inline.js';
import { outcomeLabel, type CheckpointOutcome, type CheckpointOutcomeLabel } from '../checkpoint/engine.js';
import { CellTable, publishCell, type Cell } from './cells.js';
import { divergenceRecord, type DivergenceRecord } from './divergence-record.js';
import { FastHistogram } from './fast-histogram.js';
import { MetricName, modes, reportedPhases, sides, type ReportedPhase } from './metric-names.js';
import { RECENT_DIVERGENCES, type MetricsSnapshot } from './snapshot.js';

/**
 * Every counter and gauge of the proxy (`compare`, `run` and `replay` share it), in one prom-client Registry (a fresh one by default, never the
 * global: two instances in one process, e.g. two tests, must not share counts).
 *
 * Why counts live in plain fields: a labelled prom-client inc() hashes its label object on every call,
 * which at a million frames a second is most of the cost. The hot path here adds to integers; each
 * counter's collect() hook publishes the difference when /metrics is scraped, so scrapes are exact.
 */
export class ColoMetrics {
  readonly registry: Registry;

  private readonly framesIn: Record<Side, Cell> = {
    primary: { labels: { side: 'primary' }, value: 0, published: 0 },
    secondary: { labels: { side: 'secondary' }, value: 0, published: 0 },
  };
  private readonly releasedFrames: Cell = { labels: {}, value: 0, published: 0 };
  private readonly droppedFrames: Cell = { labels: {}, value: 0, published: 0 };
  private readonly malformed = new CellTable(['side', 'reason']);
  private readonly divergences = new CellTable(['reason', 'protocol']);
  private readonly recentDivergences: DivergenceRecord[] = [];
  private readonly checkpointRequests = new CellTable(['reason']);
  private readonly checkpointOutcomes: Record<CheckpointOutcomeLabel, number> = { ok: 0, failed: 0, aborted: 0 };
  private lastPhasesMs: Partial<Record<ReportedPhase, number>> | null = null;
  private heldFrames = 0;
  private heldBytes = 0;
  private readonly queueDepth: Record<Side, number> = { primary: 0, secondary: 0 };
  private mode: Mode = 'protected';
  private connections = 0;
  private latencyCount = 0;
  private latencySumMs = 0;
  private readonly captureDrops = new CellTable(['role']);
  private readonly peers = new Map<string, boolean>();
  private processMetrics = false;

  private readonly checkpointCounter: Counter<'outcome'>;
  private readonly modeSwitchCounter: Counter<'from' | 'to' | 'reason'>;
  private readonly phaseHistogram: Histogram<'phase'>;
  private readonly latencyHistogram: FastHistogram;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    // collect() hooks run with `this` bound to the prom-client metric; capture the owner explicitly.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;

    new Counter({
      name: MetricName.framesIn,
      help: 'Frames received from each VM (egress side), whatever their fate',
      labelNames: ['side'],
      registers,
      collect() {
        for (const side of sides) publishCell(this, self.framesIn[side]);
      },
    });
    new Counter({
      name: MetricName.framesReleased,
      help: "Primary frames released to the client (compared equal, or flushed at a checkpoint's end)",
      registers,
      collect() {
        publishCell(this, self.releasedFrames);
      },
    });
    new Counter({
      name: MetricName.secondaryDropped,
      help: 'Secondary frames dropped after comparison or at a checkpoint (their copy was not needed)',
      registers,
      collect() {
        publishCell(this, self.droppedFrames);
      },
    });
    new Counter({
      name: MetricName.malformedFrames,
      help: 'Frames rejected as malformed, by side and reason',
      labelNames: ['side', 'reason'],
      registers,
      collect() {
        self.malformed.publish(this);
      },
    });
    new Counter({
      name: MetricName.divergences,
      help: 'Divergences between primary and secondary output, by reason and protocol',
      labelNames: ['reason', 'protocol'],
      registers,
      collect() {
        self.divergences.publish(this);
      },
    });
    new Counter({
      name: MetricName.checkpointRequests,
      help: 'Checkpoints asked for, by reason (a divergence reason, or timer)',
      labelNames: ['reason'],
      registers,
      collect() {
        self.checkpointRequests.publish(this);
      },
    });
    this.checkpointCounter = new Counter({
      name: MetricName.checkpoints,
      help: 'Checkpoints finished, by outcome (ok, failed, aborted)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of Object.keys(this.checkpointOutcomes)) this.checkpointCounter.inc({ outcome }, 0);
    this.phaseHistogram = new Histogram({
      name: MetricName.checkpointPhaseSeconds,
      help: 'Duration of each checkpoint phase (suspend, save, transfer, load, total)',
      labelNames: ['phase'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    new Gauge({
      name: MetricName.heldFrames,
      help: 'Primary frames held by the output gate (awaiting comparison or a checkpoint)',
      registers,
      collect() {
        this.set(self.heldFrames);
      },
    });
    new Gauge({
      name: MetricName.heldBytes,
      help: 'Bytes of primary frames held by the output gate',
      registers,
      collect() {
        this.set(self.heldBytes);
      },
    });
    new Gauge({
      name: MetricName.queueDepth,
      help: 'Frames queued for comparison, by side',
      labelNames: ['side'],
      registers,
      collect() {
        for (const side of sides) this.set({ side }, self.queueDepth[side]);
      },
    });
    new Gauge({
      name: MetricName.mode,
      help: 'Protection mode: 1 for the current one of protected, solo, failover, unprotected; 0 for the others',
      labelNames: ['mode'],
      registers,
      collect() {
        for (const mode of modes) this.set({ mode }, mode === self.mode ? 1 : 0);
      },
    });
    new Gauge({
      name: MetricName.connections,
      help: 'Connections the comparison engine tracks',
      registers,
      collect() {
        this.set(self.connections);
      },
    });
    new Gauge({
      name: MetricName.buildInfo,
      help: 'Always 1; the labels say which colo-proxy (version) runs on which Node.js (node)',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: packageJson.version, node: process.versions.node }, 1);
    new Counter({
      name: MetricName.captureDrops,
      help: "Frames the kernel dropped because a capture ring was full (ring capture only), by the port's role",
      labelNames: ['role'],
      registers,
      collect() {
        self.captureDrops.publish(this);
      },
    });
    new Gauge({
      name: MetricName.peerConnected,
      help: 'Whether each peer is connected (1) or not (0): the secondary for run, each socket for compare',
      labelNames: ['peer'],
      registers,
      collect() {
        for (const [peer, connected] of self.peers) this.set({ peer }, connected ? 1 : 0);
      },
    });
    this.modeSwitchCounter = new Counter({
      name: MetricName.modeSwitches,
      help: 'Hybrid protection-mode switches between compare and periodic, by direction and reason',
      labelNames: ['from', 'to', 'reason'],
      registers,
    });
    this.latencyHistogram = new FastHistogram({
      name: MetricName.compareLatencySeconds,
      help: 'Time a primary frame was held before its release (arrival to release)',
      buckets: [0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3, 10],
      registers,
    });
  }

  /**
   * Counts one engine Decision: releases, secondary drops, divergences, malformed frames. With `now` (the
   * same clock, in ms, the engine was given), also observes each released frame's hold time.
   */
  recordDecision(decision: Decision, now?: number): void {
    const released = decision.release.length;
    if (released !== 0) {
      this.releasedFrames.value += released;
      if (now !== undefined) {
        for (let i = 0; i < released; i++) this.observeCompareLatency(now - decision.release[i].arrivedAt);
      }
    }
    this.droppedFrames.value += decision.drop.length;
    const divergences = decision.divergences;
    for (let i = 0; i < divergences.length; i++) this.divergence(divergences[i]);
    const malformed = decision.malformed;
    for (let i = 0; i < malformed.length; i++) {
      this.malformed.cell(malformed[i].side, malformed[i].reason).value++;
    }
  }

  /** `n` more primary frames sent to the client: compared equal, flushed at a checkpoint, or passed through. */
  released(n: number): void {
    this.releasedFrames.value += n;
  }

  /** `n` more secondary frames discarded (compared, flushed, or not needed). */
  dropped(n: number): void {
    this.droppedFrames.value += n;
  }

  /** One divergence, counted by its reason and protocol; its record kept for /stats (its time as given: epoch ms). */
  divergence(d: Divergence): void {
    this.divergences.cell(d.reason, d.protocol).value++;
    // Built now, not at /stats: the frames may be read buffers the caller reuses once the decision is done.
    this.recentDivergences.push(divergenceRecord(d));
    if (this.recentDivergences.length > RECENT_DIVERGENCES) this.recentDivergences.shift();
  }

  /** A hybrid protection-mode switch (compare/protection-mode.ts); rare, so counted straight away. */
  modeSwitch(change: Pick<ModeSwitch, 'from' | 'to' | 'reason'>): void {
    this.modeSwitchCounter.inc({ from: change.from, to: change.to, reason: change.reason });
  }

  recordFramesIn(side: Side, n = 1): void {
    this.framesIn[side].value += n;
  }

  /** A frame rejected before it reached the engine (e.g. a zero-length chardev frame). */
  recordMalformed(side: Side, reason: string, n = 1): void {
    this.malformed.cell(side, reason).value += n;
  }

  /** A checkpoint asked for: a divergence reason, 'timer' (CHKPOINT_TIMER), or the caller's own word. */
  recordCheckpointRequest(reason: string): void {
    this.checkpointRequests.cell(reason).value++;
  }

  /**
   * A finished checkpoint: counted by outcome (ok, aborted, failed: checkpoint/engine.ts outcomeLabel), and
   * each reported phase it reached observed (a duration that is not a finite non-negative number is skipped).
   */
  checkpoint(outcome: CheckpointOutcome): void {
    const label = outcomeLabel(outcome);
    this.checkpointOutcomes[label]++;
    this.checkpointCounter.inc({ outcome: label });
    let any = false;
    const last: Partial<Record<ReportedPhase, number>> = {};
    for (const phase of reportedPhases) {
      const ms = outcome.durations[phase];
      if (ms === null || !Number.isFinite(ms) || ms < 0) continue;
      this.phaseHistogram.observe({ phase }, ms / 1000);
      last[phase] = ms;
      any = true;
    }
    if (any) this.lastPhasesMs = last;
  }

  /** Hold time of one released frame, in ms. */
  observeCompareLatency(ms: number): void {
    if (!(ms >= 0)) return;
    this.latencyHistogram.add(ms / 1000);
    this.latencyCount++;
    this.latencySumMs += ms;
  }

  setMode(mode: Mode): void {
    this.mode = mode;
  }

  setQueueDepth(side: Side, n: number): void {
    this.queueDepth[side] = n;
  }

  setHeld(frames: number, bytes: number): void {
    this.heldFrames = frames;
    this.heldBytes = bytes;
  }

  setConnections(n: number): void {
    this.connections = n;
  }

  /** `n` more frames the kernel dropped on the capture ring of the port with this role (client, primary, ...). */
  recordCaptureDrops(role: string, n: number): void {
    this.captureDrops.cell(role).value += n;
  }

  /** Whether a peer is connected now; name every peer early (false) so its series exists before it connects. */
  setPeerConnected(peer: string, connected: boolean): void {
    this.peers.set(peer, connected);
  }

  /**
   * Adds prom-client's process and Node.js metrics (CPU, memory, file descriptors, event loop lag, heap, GC)
   * to this registry; the statistics server calls it. Not in the constructor: the event-loop monitor and the
   * GC observer run for the process's life, which a ColoMetrics that is never served does not need.
   */
  collectProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry });
  }

  /** Prometheus text exposition, e.g. for a test or a one-shot dump. */
  async metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** Plain JSON for /stats: the same counts /metrics shows, without a scrape. */
  snapshot(): MetricsSnapshot {
    return {
      mode: this.mode,
      frames: {
        in: { primary: this.framesIn.primary.value, secondary: this.framesIn.secondary.value },
        released: this.releasedFrames.value,
        secondaryDropped: this.droppedFrames.value,
        malformed: {
          total: this.malformed.total(),
          bySide: { primary: 0, secondary: 0, ...this.malformed.by(0) },
          byReason: this.malformed.by(1),
        },
      },
      divergences: {
        total: this.divergences.total(),
        byReason: this.divergences.by(0),
        byProtocol: this.divergences.by(1),
        recent: [...this.recentDivergences],
      },
      checkpoints: {
        requests: { total: this.checkpointRequests.total(), byReason: this.checkpointRequests.by(0) },
        completed: { ...this.checkpointOutcomes },
        lastPhasesMs: this.lastPhasesMs === null ? null : { ...this.lastPhasesMs },
      },
      held: { frames: this.heldFrames, bytes: this.heldBytes },
      queueDepth: { ...this.queueDepth },
      connections: this.connections,
      compareLatency: {
        count: this.latencyCount,
        meanMs: this.latencyCount === 0 ? null : this.latencySumMs / this.latencyCount,
      },
    };
  }
}
