import type { Decision, Divergence, Packet, Side } from '../../compare/types.js';
import type { FrameInfo } from '../../compare/wire/frame-info.js';
import type { CaptureReader } from '../capture/record.js';
import { divergenceRecord } from '../stats/divergence-record.js';
import { ConnectionCounter } from './connections.js';
import { LatencyRecorder } from './latency.js';
import {
  REPLAY_SUMMARY_VERSION,
  type CheckpointReason,
  type ReplayCheckpoint,
  type ReplayDivergence,
  type ReplayReadError,
  type ReplaySummary,
} from './summary.js';

/**
 * Everything the replay counts: each frame's fate, divergences, checkpoints, per-connection counts and
 * compare latency. The clock (replay.ts) decides when things happen; this only records them.
 */
export class Tally {
  readonly frames = { primary: 0, secondary: 0, released: 0, outOfOrder: 0 };
  readonly checkpoints: ReplayCheckpoint[] = [];
  readonly readErrors: ReplayReadError[] = [];
  /** What the decisions handled since resetFlush() released and dropped: credited to a checkpoint. */
  flushReleased = 0;
  flushDropped = 0;
  /** The first frame's capture time (epoch ms), added to virtual time in divergence records. */
  epochOriginMs = 0;
  private readonly divergences: ReplayDivergence[] = [];
  private readonly connections = new ConnectionCounter();
  private readonly latency = new LatencyRecorder();
  private readonly dropped: Record<Side, number> = { primary: 0, secondary: 0 };
  private readonly malformed: Record<Side, number> = { primary: 0, secondary: 0 };
  private readonly malformedByReason: Record<string, number> = {};
  private readonly bytes: Record<Side, number> = { primary: 0, secondary: 0 };

  /**
   * Counts a frame read from a capture; returns its connection index (the engine tag), -1 if none.
   * `dissected`: the frame as the engine's inspect() dissected it (null: malformed); undefined to dissect here.
   */
  frameIn(side: Side, frame: Buffer, at: number, dissected?: Readonly<FrameInfo> | null): number {
    const connections = this.connections;
    const connection =
      dissected === undefined
        ? connections.classify(frame, 0)
        : dissected === null
          ? -1
          : connections.classifyDissected(dissected);
    const counts = connection >= 0 ? connections.counts[connection] : null;
    if (side === 'primary') {
      this.frames.primary++;
      this.bytes.primary += frame.length;
      if (counts !== null) counts.primary++;
    } else {
      this.frames.secondary++;
      this.bytes.secondary += frame.length;
      if (counts !== null) {
        counts.secondary++;
        counts.lastSecondaryAt = at;
      }
    }
    return connection;
  }

  readError(side: Side, reader: CaptureReader): void {
    const error = reader.error;
    if (error === null) return;
    this.readErrors.push({
      side,
      file: error.file,
      code: error.code,
      offset: error.offset,
      message: error.message,
      framesBefore: reader.frames,
    });
  }

  /** Records one engine decision made at virtual time `at`. */
  decision(decision: Decision, at: number): void {
    // Indexed loops: called once per frame, and most decisions are empty or hold one packet.
    const counts = this.connections.counts;
    const release = decision.release;
    for (let i = 0; i < release.length; i++) this.released(release[i], at);
    const drop = decision.drop;
    for (let i = 0; i < drop.length; i++) {
      const packet = drop[i];
      if (packet.side === 'primary') this.dropped.primary++;
      else this.dropped.secondary++;
      this.flushDropped++;
      if (packet.tag >= 0 && packet.tag < counts.length) counts[packet.tag].dropped++;
    }
    const malformed = decision.malformed;
    for (let i = 0; i < malformed.length; i++) {
      const m = malformed[i];
      this.malformed[m.side]++;
      this.malformedByReason[m.reason] = (this.malformedByReason[m.reason] ?? 0) + 1;
    }
    const divergences = decision.divergences;
    for (let i = 0; i < divergences.length; i++) this.divergence(divergences[i]);
  }

  resetFlush(): void {
    this.flushReleased = 0;
    this.flushDropped = 0;
  }

  /** True when every frame read has a fate: nothing is held by the engine. */
  nothingHeld(): boolean {
    const f = this.frames;
    const settled = f.released + this.dropped.primary + this.dropped.secondary;
    return f.primary + f.secondary - settled - this.malformed.primary - this.malformed.secondary === 0;
  }

  private divergence(d: Divergence): void {
    this.divergences.push(divergenceRecord(d, this.epochOriginMs));
    this.connections.counts[this.connections.byConnection(d.connection)].divergences++;
  }

  private released(packet: Packet, at: number): void {
    this.frames.released++;
    this.flushReleased++;
    const counts = this.connections.counts;
    let pairedAt = packet.arrivedAt;
    if (packet.tag >= 0 && packet.tag < counts.length) {
      const connection = counts[packet.tag];
      connection.released++;
      if (connection.lastSecondaryAt > pairedAt) pairedAt = connection.lastSecondaryAt;
    }
    this.latency.add(at - pairedAt);
  }

  /** The summary's counting fields; the caller adds inputs, options and capture times. */
  counts(): Omit<ReplaySummary, 'inputs' | 'options' | 'capture' | 'clock'> {
    const f = this.frames;
    const heldPrimary = f.primary - f.released - this.dropped.primary - this.malformed.primary;
    const heldSecondary = f.secondary - this.dropped.secondary - this.malformed.secondary;
    const byReason: Partial<Record<CheckpointReason, number>> = {};
    for (const c of this.checkpoints) byReason[c.reason] = (byReason[c.reason] ?? 0) + 1;
    const divergencesByReason: ReplaySummary['divergencesByReason'] = {};
    const divergencesByProtocol: ReplaySummary['divergencesByProtocol'] = {};
    for (const d of this.divergences) {
      divergencesByReason[d.reason] = (divergencesByReason[d.reason] ?? 0) + 1;
      const protocol = d.connection.protocol;
      divergencesByProtocol[protocol] = (divergencesByProtocol[protocol] ?? 0) + 1;
    }
    return {
      schema: 'colo-proxy/replay-summary',
      version: REPLAY_SUMMARY_VERSION,
      frames: {
        primary: f.primary,
        secondary: f.secondary,
        released: f.released,
        dropped: this.dropped.primary + this.dropped.secondary,
        malformed: this.malformed.primary + this.malformed.secondary,
        heldAtEnd: heldPrimary + heldSecondary,
        droppedBySide: { ...this.dropped },
        heldAtEndBySide: { primary: heldPrimary, secondary: heldSecondary },
        outOfOrder: f.outOfOrder,
      },
      malformed: { byReason: sortKeys(this.malformedByReason), bySide: { ...this.malformed } },
      checkpoints: { total: this.checkpoints.length, byReason: sortKeys(byReason), list: this.checkpoints },
      divergences: this.divergences,
      divergencesByReason: sortKeys(divergencesByReason),
      divergencesByProtocol: sortKeys(divergencesByProtocol),
      connections: this.connections.sorted(),
      compareLatencyMs: this.latency.summary(),
      readErrors: this.readErrors,
    };
  }

  bytesRead(side: Side): number {
    return this.bytes[side];
  }
}

/** Keys in a fixed order, so the JSON is byte-identical for the same input. */
function sortKeys<T extends Record<string, number>>(counts: T): T {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}
