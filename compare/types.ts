/**
 * The comparison engine's contract with its callers (proxy/ and src/): what goes in, what comes out.
 * Decisions are data: the caller acts on them (send, drop, count, checkpoint); the engine does no I/O.
 */
import type { MalformedReason } from './wire/frame-info.js';

export type Side = 'primary' | 'secondary';

/** A frame the engine holds until it decides. Allocated once per frame that is queued; reused never. */
export interface Packet {
  /** The frame as received; `start` is where the Ethernet header begins (after a vnet header, if any). */
  readonly frame: Buffer;
  readonly start: number;
  readonly side: Side;
  /** The caller's clock (ms) when the frame was pushed. */
  readonly arrivedAt: number;
  /** Opaque to the engine: the caller's own label (e.g. an input index or vnet_hdr_len). */
  readonly tag: number;
  /**
   * True when a pass-through rule let the frame by uncompared (compare/passthrough.ts): a caller that buffers
   * released output (periodic mode) sends these at once, since no checkpoint protects them.
   */
  readonly passedByRule?: boolean;
}

export type Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'ip' | 'arp' | 'other';

/**
 * Why a checkpoint is asked for.
 * payload: bytes differ; length: same start, different sizes where sizes must agree; header: a compared header
 * field differs (datagram transport header, or the normalised IP header of other protocols; offset is within
 * that header); flags: TCP SYN/FIN/RST
 * disagree; ack: min-ack rule not met when bytes match; timeout: a packet held beyond compare_timeout;
 * overflow: a queue beyond max_queue_size; timer: CHKPOINT_TIMER (raised by callers, never by the engine).
 */
export type DivergenceReason = 'payload' | 'length' | 'header' | 'flags' | 'ack' | 'timeout' | 'overflow' | 'timer';

/** The connection, in printable form. Built only when a divergence is recorded, never per packet. */
export interface ConnectionId {
  protocol: Protocol;
  /** 4, 6, or 0 for non-IP. */
  family: 0 | 4 | 6;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
}

/** One divergence: the record every statistics consumer (metrics, NDJSON, pcapng, replay JSON) reads. */
export interface Divergence {
  time: number;
  connection: ConnectionId;
  protocol: Protocol;
  reason: DivergenceReason;
  /**
   * Byte offset of the first difference: within the connection's stream (TCP, counted from the first byte
   * compared since the connection was first seen or last flushed) or within the datagram's payload; null
   * where no byte was compared (timeout, overflow, timer).
   */
  offset: number | null;
  primary: Packet | null;
  secondary: Packet | null;
  /** A short human explanation, e.g. "primary ack 1001 > secondary ack 901". */
  detail: string;
}

/** A frame the engine could not dissect: rejected uncompared, never held. */
export interface MalformedFrame {
  readonly side: Side;
  readonly reason: MalformedReason;
  readonly frame: Buffer;
}

/**
 * What the caller must do after one engine call (push, tick or flush). Read-only for every consumer: the
 * engine fills one Decision and returns it from every call, so consume it before the next call (copy out
 * what must outlive it). Every pushed frame appears exactly once across all Decisions: released, dropped
 * or malformed (or it stays held and appears later).
 */
export interface Decision {
  /** Primary packets to send, in sending order. */
  readonly release: ReadonlyArray<Packet>;
  /** Secondary packets that were compared (or need no comparison) and are discarded. */
  readonly drop: ReadonlyArray<Packet>;
  /** Checkpoint requests: at most one per connection until the next flush. */
  readonly divergences: ReadonlyArray<Divergence>;
  readonly malformed: ReadonlyArray<MalformedFrame>;
}

/** Which hard bound on held packets was passed: frames or bytes, held by one side or by both together. */
export type HeldBound =
  'primary-frames' | 'primary-bytes' | 'secondary-frames' | 'secondary-bytes' | 'total-frames' | 'total-bytes';

/** The engine's counters (CompareEngine.stats()): held now, and totals since it was built. */
export interface EngineStats {
  connections: number;
  heldPrimaryPackets: number;
  heldPrimaryBytes: number;
  heldSecondaryPackets: number;
  heldSecondaryBytes: number;
  /** Idle connections forgotten: to make room, after a flush over the bound, or idle past connectionIdleMs. */
  evictions: number;
  /** Packets of new connections passed uncompared because the table was full of busy connections. */
  connectionsRefused: number;
  /** Flushes forced by a held-frames or held-bytes bound (docs/compare.md, "Memory bounds"), by the bound hit. */
  heldBoundFlushes: Partial<Record<HeldBound, number>>;
  /** Primary packets those flushes released uncompared, and secondary packets they dropped. */
  heldBoundReleased: number;
  heldBoundDropped: number;
  releasedPackets: number;
  droppedPackets: number;
  malformedPackets: number;
  /** Primary frames released, and secondary frames dropped, without comparison (non-IP, NDP/MLD). */
  uncomparedPrimary: number;
  uncomparedSecondary: number;
  /** Primary frames released, and secondary frames dropped, at once because a pass-through rule matched them. */
  passedThroughRulePrimary: number;
  passedThroughRuleSecondary: number;
  divergences: Partial<Record<DivergenceReason, number>>;
  flushes: number;
  /**
   * Secondary TCP segments dropped uncompared as resends: every unit lay below what was already compared or
   * released, or ('sequence' alignment) below what the secondary had sent before the last flush.
   */
  tcpSecondaryResendsDropped: number;
  /**
   * Primary TCP segments released unverified after a checkpoint ('sequence' alignment): the secondary had sent
   * those units before the flush and will not send them again. Units: payload bytes, plus one per SYN or FIN.
   */
  tcpUnverifiedSegments: number;
  tcpUnverifiedBytes: number;
  /** SYNs with a new sequence number on a sequence-aligned connection (comparison restarted from them). */
  tcpStreamRestarts: number;
}
