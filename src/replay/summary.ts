import type { ConnectionId, DivergenceReason, Protocol, Side } from '../../compare/types.js';
import type { MalformedReason } from '../../compare/wire/frame-info.js';
import type { DivergenceRecord } from '../stats/divergence-record.js';
import type { ReplayModes } from './modes.js';

/**
 * The replay summary: what `colo-proxy replay --json FILE` writes and what the HTML report
 * (src/report/html.ts) and the examples' documented counts read. Plain JSON, no class instances.
 * Its schema is documented field by field in docs/replay.md; bump `version` on any incompatible change.
 *
 * Times (`startedAt`, `lastFrameMs`, ...) are milliseconds of VIRTUAL time since the first frame of the
 * merged capture (0 = that frame); `capture.firstFrameEpochMs` anchors them to wall-clock time. The one
 * exception is a divergence's `time`: the shared DivergenceRecord carries epoch milliseconds (the capture's
 * own timestamps), so the same divergence reads alike here, in the event log and in the pcapng comments.
 */
export const REPLAY_SUMMARY_VERSION = 2;

/** Why a checkpoint ran: the reason of the request that started it (a divergence reason or 'timer'). */
export type CheckpointReason = DivergenceReason;

export interface ReplaySummary {
  schema: 'colo-proxy/replay-summary';
  version: typeof REPLAY_SUMMARY_VERSION;
  inputs: { primary: ReplayInput; secondary: ReplayInput };
  options: ReplayOptionsUsed;
  capture: {
    /** Capture timestamp of the first frame replayed, ms since the Unix epoch; null when no frame was read. */
    firstFrameEpochMs: number | null;
    /** Virtual time of the last frame (ms since the first frame). */
    lastFrameMs: number;
    /** Virtual time when the replay ended: after the last frame, pending checkpoints and timeouts drained. */
    endMs: number;
  };
  /**
   * Jumps of the virtual clock over empty time: between two frames CHKPOINT_TIMER fires at most once and
   * ticks stop once nothing held can still time out; the rest of the gap is one jump (docs/replay.md).
   */
  clock: {
    jumps: number;
    /** Virtual time jumped over, in total and in the longest jump. */
    jumpedMs: number;
    largestJumpMs: number;
    /** CHKPOINT_TIMER firings skipped by the jumps (each would have been a checkpoint of nothing new). */
    timersSkipped: number;
  };
  /** Every frame has exactly one fate: primary + secondary = released + dropped + malformed + heldAtEnd. */
  frames: {
    primary: number;
    secondary: number;
    /** Primary frames sent to the client. */
    released: number;
    /** Frames discarded: secondary copies (and primary frames, if the engine ever drops one: see droppedBySide). */
    dropped: number;
    /** Frames the engine rejected as malformed (never compared, never released). */
    malformed: number;
    /** Frames still held by the engine when the replay ended. */
    heldAtEnd: number;
    droppedBySide: Record<Side, number>;
    heldAtEndBySide: Record<Side, number>;
    /** Frames whose capture timestamp went backwards within one input: replayed at the current virtual time. */
    outOfOrder: number;
  };
  malformed: {
    byReason: Partial<Record<MalformedReason, number>>;
    bySide: Record<Side, number>;
  };
  checkpoints: {
    total: number;
    byReason: Partial<Record<CheckpointReason, number>>;
    /** In the order they started. */
    list: ReplayCheckpoint[];
  };
  /** Every divergence the engine reported, in time order (src/stats/divergence-record.ts). */
  divergences: ReplayDivergence[];
  divergencesByReason: Partial<Record<DivergenceReason, number>>;
  divergencesByProtocol: Partial<Record<Protocol, number>>;
  /** One entry per connection that produced a frame or a divergence, sorted by `connection`. */
  connections: ReplayConnection[];
  /**
   * Compare latency: for each released primary frame, the virtual time from the arrival of the later frame
   * of its pair (its secondary twin, or itself when released unmatched at a checkpoint) to its release.
   */
  compareLatencyMs: LatencySummary;
  /** Read errors (bad magic, truncation, ...): the replay still reports everything read before them. */
  readErrors: ReplayReadError[];
  /**
   * Pass-through rules (--passthrough) and what they released early: primary frames released and secondary
   * frames dropped without comparison. Set by replayFiles(); absent from a summary of replay() alone.
   */
  passthrough?: ReplayPassthrough;
  /** Protection mode (--mode) and what it cost: switches, time paused, release latency. Absent without --mode. */
  modes?: ReplayModes;
}

export interface ReplayPassthrough {
  /** Each rule in its canonical text, with the frames (both sides) it matched. */
  rules: { rule: string; frames: number }[];
  releasedPrimary: number;
  droppedSecondary: number;
}

export interface ReplayInput {
  /** The file as given on the command line. */
  file: string;
  format: 'pcap' | 'pcapng';
  /** pcapng: the interface index (counted across sections in file order); pcap: null. */
  interface: number | null;
  /** Frames read from this input (including ones the engine later rejected as malformed). */
  frames: number;
  bytes: number;
}

export interface ReplayOptionsUsed {
  compareTimeoutMs: number;
  expiredScanCycleMs: number;
  maxQueueSize: number;
  checkpointTimerMs: number;
  checkpointDurationMs: number;
  /** 0 = as fast as possible; 1 = real time; 2 = twice as fast; ... */
  speed: number;
  /** --guest-busy-share: checkpoint pauses delay the guests (src/replay/guest-lag.ts); absent when not modelled. */
  guestBusyShare?: number;
}

export interface ReplayCheckpoint {
  /** 1-based, in start order. */
  index: number;
  reason: CheckpointReason;
  /** Virtual time of the first request this checkpoint serves. */
  requestedAt: number;
  startedAt: number;
  /** startedAt + the simulated checkpoint duration; engine.flush() ran at this time. */
  completedAt: number;
  /** Requests coalesced into this checkpoint (>= 1). */
  requests: number;
  /** Frames the flush released (primary) and dropped (secondary). */
  released: number;
  dropped: number;
}

/** One divergence: the shape every output shares (docs/statistics.md, "Divergence records"). */
export type ReplayDivergence = DivergenceRecord;

/** A divergence's time as virtual ms since the first frame, like the summary's other times. */
export function divergenceVirtualMs(summary: Pick<ReplaySummary, 'capture'>, d: ReplayDivergence): number {
  return Math.round((d.time - (summary.capture.firstFrameEpochMs ?? 0)) * 1000) / 1000;
}

export interface ReplayConnection {
  connection: string;
  protocol: Protocol;
  /** Frames read per side for this connection (malformed frames are not attributed to a connection). */
  primary: number;
  secondary: number;
  released: number;
  dropped: number;
  divergences: number;
}

export interface LatencySummary {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface ReplayReadError {
  side: Side;
  file: string;
  /** Stable code, see CaptureErrorCode in src/capture/errors.ts. */
  code: string;
  /** Byte offset in the file where the bad structure starts. */
  offset: number;
  message: string;
  /** Frames read from this input before the error (all of them were replayed). */
  framesBefore: number;
}

/** The one printable form of a connection: the summary's `connections` and the pcapng comments. */
export function formatConnection(id: ConnectionId): string {
  if (id.src === '' && id.dst === '') return id.protocol;
  if (id.family === 0) return `${id.protocol} ${id.src} > ${id.dst}`;
  const host = (addr: string): string => (id.family === 6 ? `[${addr}]` : addr);
  if (id.protocol === 'tcp' || id.protocol === 'udp') {
    return `${id.protocol} ${host(id.src)}:${id.srcPort} > ${host(id.dst)}:${id.dstPort}`;
  }
  return `${id.protocol} ${id.src} > ${id.dst}`;
}
