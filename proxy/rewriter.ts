/**
 * The secondary's TCP sequence rewriter (QEMU's filter-rewriter, done right).
 *
 * The two VMs pick different initial sequence numbers, so the client's acknowledgments (which follow the
 * primary) mean nothing to the secondary, and the secondary's output is in its own sequence space. Per
 * connection the rewriter learns offset = secondary ISN - primary ISN, then
 *   - client -> secondary: ack += offset (and every SACK edge), checksum fixed incrementally;
 *   - secondary -> client side: seq -= offset, so its output is in the primary's space (what the client
 *     expects after a failover, and what the comparison engine sees).
 *
 * Unlike QEMU, which can only see the client's side and learns the offset from the client's first ACK,
 * this proxy sees both VMs' handshakes, so the offset is exact for client- and VM-initiated connections,
 * and client frames to the secondary are held until it is known: a too-early ACK would make the secondary
 * answer with RST. The rewriter never sends: the VM frame that completes the handshake returns the held frames,
 * and the caller sends them. Teardown is tracked in the primary's space only (QEMU mixes the two and so keeps
 * connections forever whenever the offset is not 0).
 *
 * A connection whose handshake was never seen (it predates the rewriter, or the pair was re-seeded) has
 * offset 0: after a checkpoint the secondary is a clone of the primary and shares its sequence space. So does
 * one whose handshake a checkpoint interrupted (the primary had answered, the secondary not yet).
 */
import { RingQueue } from '../compare/queue.js';
import { seqAdd, seqDiff, seqGt } from '../compare/seq.js';
import { furthestEnd, segmentEnd } from '../compare/tcp-stream.js';
import { rewriteTcpAck, rewriteTcpSeq } from '../compare/wire/checksum.js';
import { dissectFrame } from '../compare/wire/dissect.js';
import { FrameInfo, IpProtocol, TcpFlag } from '../compare/wire/frame-info.js';
import { Phase, RewriterConnection, RewriterTable } from './rewriter-table.js';
import { rewriteSackEdges, shiftTimestamp, timestampValue, TS_ECHO, TS_VALUE } from './tcp-options.js';

export interface RewriterOptions {
  /** Client frames held per connection while the secondary's ISN is unknown; beyond it they are dropped and counted. */
  maxHeldPerConnection: number;
  /** Connections tracked; beyond it the oldest closed or idle one is forgotten (counted). */
  maxConnections: number;
  /** A closed connection is forgotten this long (ms) after its last FIN or RST. */
  lingerMs: number;
  /** A connection with no frame for this long (ms) is forgotten. */
  idleMs: number;
}

export const defaultRewriterOptions: RewriterOptions = {
  maxHeldPerConnection: 256,
  maxConnections: 65536,
  lingerMs: 5000,
  idleMs: 600_000,
};

export interface RewriterCounters {
  ackRewritten: number;
  seqRewritten: number;
  sackRewritten: number;
  /** TCP timestamp options mapped between the VMs' clocks (TSval out of the secondary, TSecr into it). */
  tsRewritten: number;
  /** Client frames held until the secondary's ISN was known. */
  held: number;
  /** Held client frames dropped because the per-connection hold was full (TCP retransmits them). */
  heldOverflow: number;
  /** Held frames dropped: the connection was forgotten, or a checkpoint cloned the VMs, before the offset was known. */
  heldAbandoned: number;
  /**
   * Secondary frames held because they came before the primary's SYN-ACK (a faster secondary): unmapped, the
   * comparison would take the secondary's own ISN for the stream's start. Released mapped (releasedSecondary).
   */
  heldSecondary: number;
  offsetsLearned: number;
  connectionsForgotten: number;
  /** Client acks toward the secondary lowered to the end of what the secondary has sent (see rewriteClientFrame). */
  ackClamped: number;
}

export type ToSecondary = 'forward' | 'held' | 'dropped';

/**
 * Client frames the rewriter held and now lets go (the offset became known), oldest first: the caller sends
 * each to the secondary. One queue reused by every call, so nothing is allocated: take every frame
 * (`shift()` until undefined) before the next call. A call made while sending (a port that delivers
 * synchronously) appends to the same queue, and whoever drains it keeps the order.
 */
export interface ReleasedFrames {
  readonly length: number;
  shift(): Buffer | undefined;
}

export class SeqRewriter {
  readonly counters: RewriterCounters = {
    ackRewritten: 0,
    seqRewritten: 0,
    sackRewritten: 0,
    tsRewritten: 0,
    held: 0,
    heldOverflow: 0,
    heldAbandoned: 0,
    heldSecondary: 0,
    offsetsLearned: 0,
    connectionsForgotten: 0,
    ackClamped: 0,
  };
  private readonly options: RewriterOptions;
  private readonly connections = new RewriterTable();
  private readonly released = new RingQueue<Buffer>(16);
  /**
   * Secondary frames the rewriter held and now lets go, mapped into the primary's space, oldest first: the
   * caller hands each to the comparison. Reused like the client queue: drain it after every fromPrimary call.
   */
  readonly releasedSecondary: ReleasedFrames = new RingQueue<Buffer>(4);
  /** Whether the last fromSecondary call kept its frame (it comes back through releasedSecondary). */
  secondaryHeld = false;
  private primaryAlive = true;
  /** Re-dissects held frames as they are released (the caller's FrameInfo has moved on). */
  private readonly heldInfo = new FrameInfo();

  constructor(options: Partial<RewriterOptions> = {}) {
    this.options = { ...defaultRewriterOptions, ...options };
  }

  get size(): number {
    return this.connections.size;
  }

  /**
   * A client frame on its way to the secondary (the primary already has its copy: the frame may be
   * patched in place). 'forward': send it now; 'held': the rewriter keeps it until the offset is known, and
   * the fromPrimary/fromSecondary call that learns it returns it; 'dropped': the hold was full (counted).
   */
  toSecondary(frame: Buffer, info: FrameInfo, now: number): ToSecondary {
    if (!isTcp(info)) return 'forward';
    const flags = info.tcpFlags;
    let conn = this.connections.find(info, false);
    if ((flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN) {
      // A client SYN starts (or restarts, on port reuse) a client-initiated connection.
      if (conn === null || conn.phase !== Phase.Learning) conn = this.track(info, false, now);
      conn.lastSeen = now;
      return 'forward';
    }
    if (conn === null) return 'forward';
    conn.lastSeen = now;
    if (conn.phase === Phase.Learning) {
      if (conn.held.length >= this.options.maxHeldPerConnection) {
        this.counters.heldOverflow++;
        return 'dropped';
      }
      conn.held.push(frame);
      this.counters.held++;
      return 'held';
    }
    this.noteClientTeardown(conn, flags, now);
    this.rewriteClientFrame(frame, info, conn);
    return 'forward';
  }

  /**
   * A frame the primary sent: only its handshake matters here (its ISN). Returns the client frames released
   * by it (the offset became known), for the caller to send to the secondary.
   */
  fromPrimary(info: FrameInfo, now: number): ReleasedFrames {
    if (!isTcp(info) || (info.tcpFlags & TcpFlag.SYN) === 0) return this.released;
    const conn = this.connectionForVmSyn(info, now);
    conn.primaryIsn = info.tcpSeq;
    conn.hasPrimaryIsn = true;
    conn.primaryTs = timestampValue(info);
    this.maybeEstablish(conn);
    return this.released;
  }

  /**
   * A frame the secondary sent: learn its ISN, then map its seq into the primary's space (in place). Returns
   * the client frames released by it, as fromPrimary does.
   */
  fromSecondary(frame: Buffer, info: FrameInfo, now: number): ReleasedFrames {
    this.secondaryHeld = false;
    if (!isTcp(info)) return this.released;
    const flags = info.tcpFlags;
    let conn: RewriterConnection | null;
    if (flags & TcpFlag.SYN) {
      conn = this.connectionForVmSyn(info, now);
      conn.secondaryIsn = info.tcpSeq;
      conn.hasSecondaryIsn = true;
      conn.secondaryTs = timestampValue(info);
      this.maybeEstablish(conn);
    } else {
      conn = this.connections.find(info, true);
    }
    if (conn === null) return this.released;
    conn.lastSeen = now;
    if (flags & (TcpFlag.FIN | TcpFlag.RST)) this.noteVmTeardown(conn, flags, now);
    if (conn.phase === Phase.Learning) {
      // Only the primary's ISN can be missing here (the secondary's SYN-ACK was just seen or is this frame).
      // Once the primary is gone none will come: the secondary's frames pass in its own space.
      if (!this.primaryAlive) return this.released;
      if (conn.heldSecondary.length >= this.options.maxHeldPerConnection) {
        this.counters.heldOverflow++;
        this.secondaryHeld = true;
        return this.released;
      }
      conn.heldSecondary.push(frame);
      this.counters.heldSecondary++;
      this.secondaryHeld = true;
      return this.released;
    }
    this.mapSecondary(frame, info, conn);
    return this.released;
  }

  /**
   * Failover: no primary ISN will come. The secondary frames held for one are let go as they are (the client
   * never saw the primary's answer to those SYNs), and later ones are no longer held.
   */
  primaryLost(): void {
    this.primaryAlive = false;
    for (let conn = this.connections.first(); conn !== null; conn = conn.next) {
      for (const frame of conn.heldSecondary) (this.releasedSecondary as RingQueue<Buffer>).push(frame);
      conn.heldSecondary = [];
    }
  }

  /** Puts a secondary frame into the primary's sequence space and clock (in place). */
  private mapSecondary(frame: Buffer, info: FrameInfo, conn: RewriterConnection): void {
    const flags = info.tcpFlags;
    if ((flags & TcpFlag.RST) === 0) {
      const end = segmentEnd(info.tcpSeq, flags, info.payloadLength);
      conn.secondaryEnd = furthestEnd(conn.hasSecondaryEnd, conn.secondaryEnd, end);
      conn.hasSecondaryEnd = true;
    }
    if (conn.offset !== 0) {
      rewriteTcpSeq(frame, info, seqAdd(info.tcpSeq, -conn.offset));
      this.counters.seqRewritten++;
    }
    if (conn.tsOffset !== 0 && shiftTimestamp(frame, info, TS_VALUE, -conn.tsOffset)) this.counters.tsRewritten++;
  }

  /**
   * After a checkpoint the secondary is a clone of the primary: with `resetOffsets` every offset becomes 0.
   * A lab guest whose kernel state is not part of the checkpoint keeps its own sequence space: pass false.
   */
  onCheckpoint(resetOffsets: boolean): void {
    if (!resetOffsets) return;
    for (let conn = this.connections.first(); conn !== null; conn = conn.next) {
      if (conn.phase === Phase.Learning) {
        this.cloneMidHandshake(conn);
        continue;
      }
      conn.offset = 0;
      conn.tsOffset = 0;
      // A clone sent what the primary sent: what this secondary sent before the checkpoint says nothing now.
      conn.hasSecondaryEnd = false;
    }
  }

  /**
   * A checkpoint came while a handshake was still being learned (typically: the secondary died before it
   * answered a SYN, and the pair was re-seeded). The clone holds the primary's TCP state, ISN included, and
   * will not answer that SYN again: waiting for its ISN would hold the client's frames to it (and its own output)
   * for as long as the connection lasts. The held client frames reached the primary, so the clone has them; the
   * held secondary frames came from the replaced VM.
   */
  private cloneMidHandshake(conn: RewriterConnection): void {
    this.abandonHeld(conn);
    // Without the primary's ISN yet, both VMs will answer with the same one: learn it as usual.
    conn.hasSecondaryIsn = conn.hasPrimaryIsn;
    conn.secondaryIsn = conn.primaryIsn;
    conn.secondaryTs = conn.hasPrimaryIsn ? conn.primaryTs : -1;
    this.maybeEstablish(conn);
  }

  /** Forgets closed and idle connections; call periodically with the current time. */
  sweep(now: number): void {
    for (let conn = this.connections.first(); conn !== null;) {
      const next = conn.next;
      const closedLongAgo = conn.phase === Phase.Closing && now - conn.closedAt >= this.options.lingerMs;
      if (closedLongAgo || now - conn.lastSeen >= this.options.idleMs) this.forget(conn);
      conn = next;
    }
  }

  /** Offsets per connection, for status output and tests. */
  offsets(): Array<{ key: string; offset: number; phase: 'learning' | 'established' | 'closing' }> {
    const phases = ['learning', 'established', 'closing'] as const;
    const out: Array<{ key: string; offset: number; phase: 'learning' | 'established' | 'closing' }> = [];
    for (let c = this.connections.first(); c !== null; c = c.next)
      out.push({ key: this.connections.keyHex(c), offset: c.offset, phase: phases[c.phase] });
    return out;
  }

  private track(info: FrameInfo, fromVm: boolean, now: number): RewriterConnection {
    const existing = this.connections.find(info, fromVm);
    if (existing !== null) this.forget(existing);
    if (this.connections.size >= this.options.maxConnections) this.evictOne();
    return this.connections.add(info, fromVm, now);
  }

  /** A VM's SYN or SYN|ACK: joins the client-initiated connection, or starts a VM-initiated one. */
  private connectionForVmSyn(info: FrameInfo, now: number): RewriterConnection {
    const conn = this.connections.find(info, true);
    if (conn !== null && conn.phase === Phase.Learning) return conn;
    const isVmInitiated = (info.tcpFlags & TcpFlag.ACK) === 0;
    if (conn !== null && !isVmInitiated) return conn; // a retransmitted SYN|ACK of an established connection
    return this.track(info, true, now);
  }

  private maybeEstablish(conn: RewriterConnection): void {
    if (conn.phase !== Phase.Learning || !conn.hasPrimaryIsn || !conn.hasSecondaryIsn) return;
    conn.offset = seqDiff(conn.secondaryIsn, conn.primaryIsn);
    if (conn.primaryTs >= 0 && conn.secondaryTs >= 0) conn.tsOffset = seqDiff(conn.secondaryTs, conn.primaryTs);
    conn.phase = Phase.Established;
    this.counters.offsetsLearned++;
    const held = conn.held;
    conn.held = [];
    for (const frame of held) {
      const info = dissectFrame(frame, this.heldInfo);
      if (info === null) continue;
      this.noteClientTeardown(conn, info.tcpFlags, conn.lastSeen);
      this.rewriteClientFrame(frame, info, conn);
      this.released.push(frame);
    }
    const heldSecondary = conn.heldSecondary;
    conn.heldSecondary = [];
    for (const frame of heldSecondary) {
      const info = dissectFrame(frame, this.heldInfo);
      if (info === null) continue;
      this.mapSecondary(frame, info, conn);
      (this.releasedSecondary as RingQueue<Buffer>).push(frame);
    }
  }

  private rewriteClientFrame(frame: Buffer, info: FrameInfo, conn: RewriterConnection): void {
    // Timestamps first: the echo goes back to the secondary's own clock (Linux rejects a handshake ACK
    // whose TSecr it never sent).
    if (conn.tsOffset !== 0 && shiftTimestamp(frame, info, TS_ECHO, conn.tsOffset)) this.counters.tsRewritten++;
    if ((info.tcpFlags & TcpFlag.ACK) === 0) return;
    let ack = seqAdd(info.tcpAck, conn.offset);
    // The client acks what the primary sent. A secondary that is behind (after a checkpoint that did not
    // clone its kernel, or bytes released unverified) would ignore an ack of bytes it has not sent yet, and
    // its window would stay shut until a retransmission timeout: give it the part it can take.
    if (conn.hasSecondaryEnd && seqGt(ack, conn.secondaryEnd)) {
      ack = conn.secondaryEnd;
      this.counters.ackClamped++;
    }
    if (ack === info.tcpAck) return;
    rewriteTcpAck(frame, info, ack);
    this.counters.ackRewritten++;
    if (conn.offset !== 0 && info.tcpHeaderLength > 20 && rewriteSackEdges(frame, info, conn.offset))
      this.counters.sackRewritten++;
  }

  private noteClientTeardown(conn: RewriterConnection, flags: number, now: number): void {
    if (flags & TcpFlag.RST) this.close(conn, now);
    else if (flags & TcpFlag.FIN) {
      conn.clientFin = true;
      if (conn.vmFin) this.close(conn, now);
    }
  }

  private noteVmTeardown(conn: RewriterConnection, flags: number, now: number): void {
    if (flags & TcpFlag.RST) this.close(conn, now);
    else {
      conn.vmFin = true;
      if (conn.clientFin) this.close(conn, now);
    }
  }

  private close(conn: RewriterConnection, now: number): void {
    if (conn.phase === Phase.Closing) return;
    // Still rewriting while closing: the last ACKs and retransmitted FINs need the offset too.
    if (conn.phase === Phase.Learning) this.abandonHeld(conn);
    conn.phase = Phase.Closing;
    conn.closedAt = now;
  }

  private forget(conn: RewriterConnection): void {
    this.abandonHeld(conn);
    this.connections.remove(conn);
    this.counters.connectionsForgotten++;
  }

  private abandonHeld(conn: RewriterConnection): void {
    this.counters.heldAbandoned += conn.held.length + conn.heldSecondary.length;
    conn.held = [];
    conn.heldSecondary = [];
  }

  private evictOne(): void {
    let victim: RewriterConnection | null = null;
    for (let conn = this.connections.first(); conn !== null; conn = conn.next) {
      if (conn.phase === Phase.Closing) {
        victim = conn;
        break;
      }
      if (victim === null || conn.lastSeen < victim.lastSeen) victim = conn;
    }
    if (victim !== null) this.forget(victim);
  }
}

function isTcp(info: FrameInfo): boolean {
  return info.ipVersion !== 0 && info.ipProtocol === IpProtocol.TCP && !info.isFragment;
}
