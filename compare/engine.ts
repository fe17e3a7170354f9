/**
 * The comparison engine: the one entry point proxy/ and src/ use. It dissects each pushed frame, finds its
 * connection, hands it to the comparator for its protocol and returns what to do as data (a Decision). It
 * does no I/O and reads no clock: `now` comes with every call.
 *
 * Per connection, the engine asks for at most ONE checkpoint (a divergence record) and then holds everything
 * on that connection, comparing nothing more, until flush(). QEMU notifies again on every later packet.
 */
import { ConnectionTable, ConnKind, type Connection } from './conntrack.js';
import { compareDatagram, matchDatagrams } from './datagram.js';
import { DecisionBuffer } from './decision-buffer.js';
import { compareOptions, type CompareOptions } from './engine-options.js';
import { classify, connectionIdOfPacket, protocolOf } from './frame-kind.js';
import { HeldPacket } from './held-packet.js';
import { compareArp } from './non-ip.js';
import { compareOtherIp } from './other-ip.js';
import { PassthroughMatcher, type PassthroughRule } from './passthrough.js';
import type { ComparisonSink } from './sink.js';
import { askStaleCheckpoints } from './stale-scan.js';
import {
  anchorAtFlush,
  compareTcp,
  enqueueTcp,
  isPureAck,
  notePrimarySent,
  noteSecondary,
  TcpCounters,
} from './tcp.js';
import type { Decision, DivergenceReason, EngineStats, HeldBound, Side } from './types.js';
import { dissect, MAX_FRAME_LENGTH } from './wire/dissect.js';
import { FrameInfo, type MalformedReason } from './wire/frame-info.js';

export { defaultCompareOptions, type CompareOptions } from './engine-options.js';
export type { Decision, EngineStats, MalformedFrame } from './types.js';

/** A queue emptied by a flush keeps at most this many slots (queue.ts shrinkIfEmpty). */
const QUEUE_CAPACITY_KEPT = 64;

export class CompareEngine implements ComparisonSink {
  readonly options: CompareOptions;
  private readonly table: ConnectionTable;
  private readonly decision = new DecisionBuffer();
  private readonly info = new FrameInfo();
  /** The time of the call in progress, for divergence records. */
  private now = 0;
  /** The frame inspect() last dissected into `info`, so the push() that follows need not dissect it again. */
  private inspected: Buffer | null = null;
  private inspectedStart = 0;
  private inspectedReason: MalformedReason | null = null;
  private heldPrimaryPackets = 0;
  private heldPrimaryBytes = 0;
  private heldSecondaryPackets = 0;
  private heldSecondaryBytes = 0;
  private releasedPackets = 0;
  private droppedPackets = 0;
  private malformedPackets = 0;
  private uncomparedPrimary = 0;
  private uncomparedSecondary = 0;
  private passedThroughRulePrimary = 0;
  private passedThroughRuleSecondary = 0;
  private passthrough: PassthroughMatcher;
  private flushes = 0;
  private readonly heldBoundFlushes: Partial<Record<HeldBound, number>> = {};
  private heldBoundReleased = 0;
  private heldBoundDropped = 0;
  /**
   * Packets that can still be held before any held bound could be passed (each adds one frame and at most
   * MAX_FRAME_LENGTH bytes): push() only counts it down, and checkHeldBounds() looks closer when it runs out.
   * A countdown rather than comparing the four totals per packet: measured 9-30 % of udp64 throughput.
   */
  private holdSlack = 0;
  private readonly divergenceCounts: Partial<Record<DivergenceReason, number>> = {};
  private readonly tcpCounters = new TcpCounters();
  private readonly alignBySequence: boolean;
  private forgetPositions = false;

  constructor(options: Partial<CompareOptions> = {}) {
    this.options = compareOptions(options);
    const o = this.options;
    this.alignBySequence = o.tcpAlignAfterFlush === 'sequence';
    this.table = new ConnectionTable(o.maxConnections);
    this.passthrough = new PassthroughMatcher(o.passthrough);
  }

  /**
   * One frame from one side; `start` is where its Ethernet header begins in `frame` (after any vnet header).
   * The engine keeps a reference to `frame` while it holds the packet: the caller must not reuse the buffer.
   */
  push(side: Side, frame: Buffer, start: number, now: number, tag = 0): Decision {
    const decision = this.decision.clear();
    this.now = now;
    const info = this.info;
    const malformed =
      frame === this.inspected && start === this.inspectedStart
        ? this.inspectedReason
        : dissect(frame, start, frame.length, info);
    this.inspected = null;
    if (malformed !== null) {
      decision.malformed.push({ side, reason: malformed, frame });
      this.malformedPackets++;
      return decision;
    }
    const packet = new HeldPacket(frame, start, side, now, tag, info);
    if (this.passthrough.size > 0 && this.passthrough.match(info) >= 0) {
      this.passByRule(packet);
      return decision;
    }
    const kind = classify(info);
    if (kind === 0) {
      this.passUncompared(packet);
      return decision;
    }
    const conn = this.table.lookup(info, kind, protocolOf(kind, info.ipProtocol), now);
    if (conn === null) {
      // The table is full of connections holding packets: this one is not tracked (counted by the table).
      this.passUncompared(packet);
      return decision;
    }
    const primary = side === 'primary';
    if (kind === ConnKind.TCP && !primary) {
      noteSecondary(conn, packet, this.tcpCounters, this.alignBySequence);
      // A secondary pure ACK has nothing to compare; its ack may release waiting primaries.
      if (isPureAck(packet)) {
        this.dropUnqueued(packet);
        if (!conn.diverged && conn.primary.length > 0) compareTcp(conn, this, this.tcpCounters);
        return decision;
      }
    }
    if (conn.diverged && !primary) {
      this.dropUnqueued(packet);
      return decision;
    }
    if (primary) {
      this.heldPrimaryPackets++;
      this.heldPrimaryBytes += packet.byteLength;
    } else {
      this.heldSecondaryPackets++;
      this.heldSecondaryBytes += packet.byteLength;
    }
    if (kind === ConnKind.TCP) {
      // Positions are only needed to anchor a flush by sequence number; the default mode skips the work.
      if (primary && this.alignBySequence) notePrimarySent(conn, packet, this.tcpCounters);
      enqueueTcp(conn, packet);
    } else (primary ? conn.primary : conn.secondary).push(packet);
    if (!conn.diverged) {
      // compare() is called from here, not from a helper: one call level deeper, V8 stopped inlining the
      // comparators into push() (measured: udp64 10 % slower).
      this.compare(conn);
      const queue = primary ? conn.primary : conn.secondary;
      if (!conn.diverged && queue.length > this.options.maxQueueSize) this.overflow(conn, packet, queue.length);
    }
    if (--this.holdSlack < 0) this.checkHeldBounds();
    return decision;
  }

  /**
   * Dissects a frame ahead of its push(), for a caller that labels frames by their headers (the replay's
   * per-connection counts): the push() of this same frame (same Buffer, same `start`, bytes unchanged) that
   * follows reuses the work instead of dissecting twice. Returns the engine's own FrameInfo (read it, do not
   * keep it: the next call overwrites it), or null when the frame is malformed (push() will say why).
   */
  inspect(frame: Buffer, start: number): Readonly<FrameInfo> | null {
    const reason = dissect(frame, start, frame.length, this.info);
    this.inspected = frame;
    this.inspectedStart = start;
    this.inspectedReason = reason;
    return reason === null ? this.info : null;
  }

  /**
   * The stale scan: every connection (first-seen order) holding a packet older than compareTimeoutMs asks for
   * a checkpoint, once until flush. Reason 'ack' when the oldest primary only waits for the secondary's ack.
   * Releases nothing (as QEMU): a checkpoint, then flush(), does.
   */
  tick(now: number): Decision {
    const decision = this.decision.clear();
    this.now = now;
    this.table.evictIdle(now - this.options.connectionIdleMs);
    askStaleCheckpoints(this.table.first(), now, this.options.compareTimeoutMs, this);
    return decision;
  }

  /**
   * The checkpoint completed: release every held primary (connections in first-seen order, each in its
   * queue's order), drop every held secondary, and restart comparison on every connection (TCP as
   * tcpAlignAfterFlush says).
   */
  flush(now: number): Decision {
    const decision = this.decision.clear();
    this.now = now;
    this.flushes++;
    this.flushAll();
    return decision;
  }

  /**
   * A flush after a gap in what the engine saw (the inline proxy passes frames around it while it is not
   * protected): what each TCP connection had sent by then is stale, so both sides' positions are forgotten and
   * comparison restarts at the next segment of either side, as after a SYN.
   */
  flushForgettingPositions(now: number): Decision {
    this.forgetPositions = true;
    try {
      return this.flush(now);
    } finally {
      this.forgetPositions = false;
    }
  }

  /**
   * Replaces the pass-through rules from the next push() on. Frames already held stay held until the next
   * flush: a flow that starts to pass may release a new frame before older held ones of the same flow.
   */
  setPassthrough(rules: readonly PassthroughRule[]): void {
    this.passthrough = new PassthroughMatcher(rules);
  }

  /** The rules in force, each with the frames (both sides) it matched since it was set. */
  passthroughRules(): { rule: string; frames: number }[] {
    const { rules, hits } = this.passthrough;
    return rules.map((rule, i) => ({ rule: rule.text, frames: hits[i] }));
  }

  stats(): EngineStats {
    return {
      connections: this.table.size,
      heldPrimaryPackets: this.heldPrimaryPackets,
      heldPrimaryBytes: this.heldPrimaryBytes,
      heldSecondaryPackets: this.heldSecondaryPackets,
      heldSecondaryBytes: this.heldSecondaryBytes,
      evictions: this.table.evictions,
      connectionsRefused: this.table.refused,
      heldBoundFlushes: { ...this.heldBoundFlushes },
      heldBoundReleased: this.heldBoundReleased,
      heldBoundDropped: this.heldBoundDropped,
      releasedPackets: this.releasedPackets,
      droppedPackets: this.droppedPackets,
      malformedPackets: this.malformedPackets,
      uncomparedPrimary: this.uncomparedPrimary,
      uncomparedSecondary: this.uncomparedSecondary,
      passedThroughRulePrimary: this.passedThroughRulePrimary,
      passedThroughRuleSecondary: this.passedThroughRuleSecondary,
      divergences: { ...this.divergenceCounts },
      flushes: this.flushes,
      tcpSecondaryResendsDropped: this.tcpCounters.secondaryResendsDropped,
      tcpUnverifiedSegments: this.tcpCounters.unverifiedSegments,
      tcpUnverifiedBytes: this.tcpCounters.unverifiedUnits,
      tcpStreamRestarts: this.tcpCounters.streamRestarts,
    };
  }

  // ComparisonSink: called by the comparators for queued packets.

  release(packet: HeldPacket): void {
    this.heldPrimaryPackets--;
    this.heldPrimaryBytes -= packet.byteLength;
    this.releasedPackets++;
    this.decision.release.push(packet);
  }

  drop(packet: HeldPacket): void {
    this.heldSecondaryPackets--;
    this.heldSecondaryBytes -= packet.byteLength;
    this.droppedPackets++;
    this.decision.drop.push(packet);
  }

  diverge(
    conn: Connection,
    reason: DivergenceReason,
    offset: number | null,
    primary: HeldPacket | null,
    secondary: HeldPacket | null,
    detail: string,
  ): void {
    conn.diverged = true;
    this.divergenceCounts[reason] = (this.divergenceCounts[reason] ?? 0) + 1;
    const sample = (primary ?? secondary)!;
    this.decision.divergences.push({
      time: this.now,
      connection: connectionIdOfPacket(conn.protocol, sample),
      protocol: conn.protocol,
      reason,
      offset,
      primary,
      secondary,
      detail,
    });
  }

  private compare(conn: Connection): void {
    switch (conn.kind) {
      case ConnKind.TCP:
        return compareTcp(conn, this, this.tcpCounters);
      case ConnKind.DATAGRAM:
        return matchDatagrams(conn, this, compareDatagram);
      case ConnKind.OTHER_IP:
        return matchDatagrams(conn, this, compareOtherIp);
      case ConnKind.ARP:
        return matchDatagrams(conn, this, compareArp);
    }
  }

  /** A queue passed maxQueueSize: ask for a checkpoint (reason 'overflow'). */
  private overflow(conn: Connection, packet: HeldPacket, length: number): void {
    const primary = packet.side === 'primary';
    const detail = `${packet.side} queue holds ${length} packets, more than max_queue_size ${this.options.maxQueueSize}`;
    this.diverge(conn, 'overflow', null, primary ? packet : null, primary ? null : packet, detail);
  }

  /** Releases every held primary, drops every held secondary (into the current Decision), restarts comparison. */
  private flushAll(): void {
    for (let conn = this.table.first(); conn !== null; conn = conn.nextSeen) {
      for (let p = conn.primary.shift(); p !== undefined; p = conn.primary.shift()) this.release(p);
      for (let s = conn.secondary.shift(); s !== undefined; s = conn.secondary.shift()) this.drop(s);
      conn.primary.shrinkIfEmpty(QUEUE_CAPACITY_KEPT);
      conn.secondary.shrinkIfEmpty(QUEUE_CAPACITY_KEPT);
      if (this.forgetPositions) conn.positions = null;
      if (this.alignBySequence && conn.kind === ConnKind.TCP) anchorAtFlush(conn);
      else conn.resetComparison();
    }
    // Every connection is idle now: any beyond the bound (none, unless the bound was lowered) go.
    this.table.trimTo(this.options.maxConnections);
  }

  /** The hold countdown ran out: flushes if a bound was passed, then counts the room left anew. */
  private checkHeldBounds(): void {
    const o = this.options;
    this.flushIfOverBound(o);
    const primary = this.heldPrimaryPackets;
    const secondary = this.heldSecondaryPackets;
    const primaryBytes = this.heldPrimaryBytes;
    const secondaryBytes = this.heldSecondaryBytes;
    const frames = Math.min(
      o.maxHeldFramesPerSide - Math.max(primary, secondary),
      o.maxHeldFrames - primary - secondary,
    );
    const bytes = Math.min(
      o.maxHeldBytesPerSide - Math.max(primaryBytes, secondaryBytes),
      o.maxHeldBytes - primaryBytes - secondaryBytes,
    );
    this.holdSlack = Math.min(frames, Math.floor(bytes / MAX_FRAME_LENGTH));
  }

  private flushIfOverBound(o: CompareOptions): void {
    let bound: HeldBound | null = null;
    if (this.heldPrimaryPackets > o.maxHeldFramesPerSide) bound = 'primary-frames';
    else if (this.heldPrimaryBytes > o.maxHeldBytesPerSide) bound = 'primary-bytes';
    else if (this.heldSecondaryPackets > o.maxHeldFramesPerSide) bound = 'secondary-frames';
    else if (this.heldSecondaryBytes > o.maxHeldBytesPerSide) bound = 'secondary-bytes';
    else if (this.heldPrimaryPackets + this.heldSecondaryPackets > o.maxHeldFrames) bound = 'total-frames';
    else if (this.heldPrimaryBytes + this.heldSecondaryBytes > o.maxHeldBytes) bound = 'total-bytes';
    if (bound === null) return;
    this.heldBoundFlushes[bound] = (this.heldBoundFlushes[bound] ?? 0) + 1;
    const released = this.decision.release.length;
    const dropped = this.decision.drop.length;
    this.flushAll();
    this.heldBoundReleased += this.decision.release.length - released;
    this.heldBoundDropped += this.decision.drop.length - dropped;
  }

  private passUncompared(packet: HeldPacket): void {
    if (packet.side === 'primary') {
      this.uncomparedPrimary++;
      this.releasedPackets++;
      this.decision.release.push(packet);
    } else {
      this.uncomparedSecondary++;
      this.dropUnqueued(packet);
    }
  }

  private passByRule(packet: HeldPacket): void {
    packet.passedByRule = true;
    if (packet.side === 'primary') {
      this.passedThroughRulePrimary++;
      this.releasedPackets++;
      this.decision.release.push(packet);
    } else {
      this.passedThroughRuleSecondary++;
      this.dropUnqueued(packet);
    }
  }

  private dropUnqueued(packet: HeldPacket): void {
    this.droppedPackets++;
    this.decision.drop.push(packet);
  }
}
