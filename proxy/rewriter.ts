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
 * answer with RST. Teardown is tracked in the primary's space only (QEMU mixes the two and so keeps
 * connections forever whenever the offset is not 0).
 *
 * A connection whose handshake was never seen (it predates the rewriter, or the pair was re-seeded) has
 * offset 0: after a checkpoint the secondary is a clone of the primary and shares its sequence space.
 */
import { seqAdd, seqDiff, seqGt } from '../compare/seq.js';
import { rewriteTcpAck, rewriteTcpSeq } from '../compare/wire/checksum.js';
import { dissect } from '../compare/wire/dissect.js';
import { FrameInfo, IpProtocol, TcpFlag } from '../compare/wire/frame-info.js';
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
  /** Held frames dropped because the connection was forgotten before the offset was learned. */
  heldAbandoned: number;
  offsetsLearned: number;
  connectionsForgotten: number;
  /** Client acks toward the secondary lowered to the end of what the secondary has sent (see rewriteClientFrame). */
  ackClamped: number;
}

const enum Phase {
  /** Handshake in progress: one or both VM ISNs missing. */
  Learning = 0,
  Established = 1,
  /** Both FINs or an RST seen: forgotten after lingerMs. */
  Closing = 2,
}

interface Connection {
  phase: Phase;
  primaryIsn: number;
  secondaryIsn: number;
  hasPrimaryIsn: boolean;
  hasSecondaryIsn: boolean;
  offset: number;
  /** TSval of each VM's SYN or SYN|ACK; their difference maps TCP timestamps like sequence numbers. */
  primaryTs: number;
  secondaryTs: number;
  tsOffset: number;
  /** End (wrap-aware highest seq + units) of what the secondary has sent, in its own space. */
  secondaryEnd: number;
  hasSecondaryEnd: boolean;
  clientFin: boolean;
  vmFin: boolean;
  lastSeen: number;
  closedAt: number;
  /** Client frames waiting for the offset; each with its own FrameInfo snapshot re-dissected on release. */
  held: Buffer[];
}

export type ToSecondary = 'forward' | 'held' | 'dropped';

/** The caller owns the sending: release() hands back held frames once the offset is known. */
export interface RewriterOutput {
  releaseToSecondary(frame: Buffer): void;
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
    offsetsLearned: 0,
    connectionsForgotten: 0,
    ackClamped: 0,
  };
  private readonly options: RewriterOptions;
  private readonly connections = new Map<string, Connection>();

  constructor(
    private readonly output: RewriterOutput,
    options: Partial<RewriterOptions> = {},
  ) {
    this.options = { ...defaultRewriterOptions, ...options };
  }

  get size(): number {
    return this.connections.size;
  }

  /**
   * A client frame on its way to the secondary (the primary already has its copy: the frame may be
   * patched in place). 'forward': send it now; 'held': the rewriter keeps it and releases it later;
   * 'dropped': the hold was full (counted).
   */
  toSecondary(frame: Buffer, info: FrameInfo, now: number): ToSecondary {
    if (!isTcp(info)) return 'forward';
    const flags = info.tcpFlags;
    const key = keyOf(info, false);
    let conn = this.connections.get(key);
    if ((flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN) {
      // A client SYN starts (or restarts, on port reuse) a client-initiated connection.
      if (!conn || conn.phase !== Phase.Learning) conn = this.track(key, now);
      conn.lastSeen = now;
      return 'forward';
    }
    if (!conn) return 'forward';
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

  /** A frame the primary sent: only its handshake matters here (its ISN). */
  fromPrimary(info: FrameInfo, now: number): void {
    if (!isTcp(info) || (info.tcpFlags & TcpFlag.SYN) === 0) return;
    const conn = this.connectionForVmSyn(info, now);
    conn.primaryIsn = info.tcpSeq;
    conn.hasPrimaryIsn = true;
    conn.primaryTs = timestampValue(info);
    this.maybeEstablish(conn);
  }

  /** A frame the secondary sent: learn its ISN, then map its seq into the primary's space (in place). */
  fromSecondary(frame: Buffer, info: FrameInfo, now: number): void {
    if (!isTcp(info)) return;
    const flags = info.tcpFlags;
    let conn: Connection | undefined;
    if (flags & TcpFlag.SYN) {
      conn = this.connectionForVmSyn(info, now);
      conn.secondaryIsn = info.tcpSeq;
      conn.hasSecondaryIsn = true;
      conn.secondaryTs = timestampValue(info);
      this.maybeEstablish(conn);
    } else {
      conn = this.connections.get(keyOf(info, true));
    }
    if (!conn) return;
    conn.lastSeen = now;
    if (flags & (TcpFlag.FIN | TcpFlag.RST)) this.noteVmTeardown(conn, flags, now);
    if (conn.phase === Phase.Learning) return;
    if ((flags & TcpFlag.RST) === 0) {
      const end = seqAdd(
        info.tcpSeq,
        info.payloadLength + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0),
      );
      if (!conn.hasSecondaryEnd || seqGt(end, conn.secondaryEnd)) {
        conn.secondaryEnd = end;
        conn.hasSecondaryEnd = true;
      }
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
    for (const conn of this.connections.values()) {
      if (conn.phase === Phase.Learning) continue;
      conn.offset = 0;
      conn.tsOffset = 0;
      // A clone sent what the primary sent: what this secondary sent before the checkpoint says nothing now.
      conn.hasSecondaryEnd = false;
    }
  }

  /** Forgets closed and idle connections; call periodically with the current time. */
  sweep(now: number): void {
    for (const [key, conn] of this.connections) {
      const closedLongAgo = conn.phase === Phase.Closing && now - conn.closedAt >= this.options.lingerMs;
      if (closedLongAgo || now - conn.lastSeen >= this.options.idleMs) this.forget(key, conn);
    }
  }

  /** Offsets per connection, for status output and tests. */
  offsets(): Array<{ key: string; offset: number; phase: 'learning' | 'established' | 'closing' }> {
    const phases = ['learning', 'established', 'closing'] as const;
    return [...this.connections].map(([key, c]) => ({
      key: printableKey(key),
      offset: c.offset,
      phase: phases[c.phase],
    }));
  }

  private track(key: string, now: number): Connection {
    const existing = this.connections.get(key);
    if (existing) this.forget(key, existing);
    if (this.connections.size >= this.options.maxConnections) this.evictOne();
    const conn: Connection = {
      phase: Phase.Learning,
      primaryIsn: 0,
      secondaryIsn: 0,
      hasPrimaryIsn: false,
      hasSecondaryIsn: false,
      offset: 0,
      primaryTs: -1,
      secondaryTs: -1,
      tsOffset: 0,
      secondaryEnd: 0,
      hasSecondaryEnd: false,
      clientFin: false,
      vmFin: false,
      lastSeen: now,
      closedAt: 0,
      held: [],
    };
    this.connections.set(key, conn);
    return conn;
  }

  /** A VM's SYN or SYN|ACK: joins the client-initiated connection, or starts a VM-initiated one. */
  private connectionForVmSyn(info: FrameInfo, now: number): Connection {
    const key = keyOf(info, true);
    const conn = this.connections.get(key);
    if (conn && conn.phase === Phase.Learning) return conn;
    const isVmInitiated = (info.tcpFlags & TcpFlag.ACK) === 0;
    if (conn && !isVmInitiated) return conn; // a retransmitted SYN|ACK of an established connection
    return this.track(key, now);
  }

  private maybeEstablish(conn: Connection): void {
    if (conn.phase !== Phase.Learning || !conn.hasPrimaryIsn || !conn.hasSecondaryIsn) return;
    conn.offset = seqDiff(conn.secondaryIsn, conn.primaryIsn);
    if (conn.primaryTs >= 0 && conn.secondaryTs >= 0) conn.tsOffset = seqDiff(conn.secondaryTs, conn.primaryTs);
    conn.phase = Phase.Established;
    this.counters.offsetsLearned++;
    const held = conn.held;
    conn.held = [];
    const info = new FrameInfo();
    for (const frame of held) {
      if (!redissect(frame, info)) continue;
      this.noteClientTeardown(conn, info.tcpFlags, conn.lastSeen);
      this.rewriteClientFrame(frame, info, conn);
      this.output.releaseToSecondary(frame);
    }
  }

  private rewriteClientFrame(frame: Buffer, info: FrameInfo, conn: Connection): void {
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

  private noteClientTeardown(conn: Connection, flags: number, now: number): void {
    if (flags & TcpFlag.RST) this.close(conn, now);
    else if (flags & TcpFlag.FIN) {
      conn.clientFin = true;
      if (conn.vmFin) this.close(conn, now);
    }
  }

  private noteVmTeardown(conn: Connection, flags: number, now: number): void {
    if (flags & TcpFlag.RST) this.close(conn, now);
    else {
      conn.vmFin = true;
      if (conn.clientFin) this.close(conn, now);
    }
  }

  private close(conn: Connection, now: number): void {
    if (conn.phase === Phase.Closing) return;
    // Still rewriting while closing: the last ACKs and retransmitted FINs need the offset too.
    if (conn.phase === Phase.Learning) this.abandonHeld(conn);
    conn.phase = Phase.Closing;
    conn.closedAt = now;
  }

  private forget(key: string, conn: Connection): void {
    this.abandonHeld(conn);
    this.connections.delete(key);
    this.counters.connectionsForgotten++;
  }

  private abandonHeld(conn: Connection): void {
    this.counters.heldAbandoned += conn.held.length;
    conn.held = [];
  }

  private evictOne(): void {
    let victimKey: string | undefined;
    let victim: Connection | undefined;
    for (const [key, conn] of this.connections) {
      if (conn.phase === Phase.Closing) {
        victimKey = key;
        victim = conn;
        break;
      }
      if (!victim || conn.lastSeen < victim.lastSeen) {
        victimKey = key;
        victim = conn;
      }
    }
    if (victimKey !== undefined && victim) this.forget(victimKey, victim);
  }
}

function isTcp(info: FrameInfo): boolean {
  return info.ipVersion !== 0 && info.ipProtocol === IpProtocol.TCP && !info.isFragment;
}

/**
 * One key per connection from either direction: (client address, client port, VM address, VM port).
 * `fromVm` swaps source and destination. latin1 keeps one char per byte, so the key is exact.
 */
function keyOf(info: FrameInfo, fromVm: boolean): string {
  const buf = info.buf;
  const n = info.addrLength;
  const client = fromVm ? info.dstAddrOffset : info.srcAddrOffset;
  const vm = fromVm ? info.srcAddrOffset : info.dstAddrOffset;
  const clientPort = fromVm ? info.dstPort : info.srcPort;
  const vmPort = fromVm ? info.srcPort : info.dstPort;
  return `${buf.toString('latin1', client, client + n)}${buf.toString('latin1', vm, vm + n)}${clientPort}:${vmPort}`;
}

function printableKey(key: string): string {
  return Buffer.from(key, 'latin1').toString('hex');
}

function redissect(frame: Buffer, info: FrameInfo): boolean {
  return dissect(frame, 0, frame.length, info) === null;
}
