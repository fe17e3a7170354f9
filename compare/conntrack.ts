import { KeyIndex, type KeyIndexEntry } from './key-slab.js';
import { RingQueue } from './queue.js';
import type { HeldPacket } from './held-packet.js';
import type { Protocol } from './types.js';
import type { FrameInfo } from './wire/frame-info.js';

/** How a connection's packets are compared; part of the key so e.g. IP fragments never join a TCP stream. */
export const ConnKind = { TCP: 1, DATAGRAM: 2, OTHER_IP: 3, ARP: 4 } as const;
export type ConnKind = (typeof ConnKind)[keyof typeof ConnKind];

/**
 * Key layout, in 32-bit words: [version|kind|protocol|vlan, srcPort|dstPort, src address…, dst address…].
 * IPv4 uses 2 + 2 words, IPv6 2 + 8; ARP replies use their sender and target protocol addresses (2 + 2).
 * Keys live in a KeyIndex (key-slab.ts), a row of one Int32Array slab per connection, instead of a string per
 * packet or a typed array per connection: looking up costs no allocation and an idle connection no extra object.
 */
const KEY_WORDS = 10;

/**
 * Positions in the primary's sequence space (the inline proxy rewrites the secondary's seqs into it), kept for
 * 'sequence' alignment (tcp.ts anchorAtFlush). Observations, not comparison state: they survive flushes.
 */
export class TcpPositions {
  /** Highest (wrap-aware) end of any primary segment with a SYN, data, FIN or RST. */
  primaryEnd = 0;
  hasPrimaryEnd = false;
  /** The same for the secondary, including segments dropped uncompared while the connection was diverged. */
  secondaryEnd = 0;
  hasSecondaryEnd = false;
  /** Sequence number of the primary's last SYN: a later SYN with another one starts a new stream. */
  synSeq = 0;
  hasSynSeq = false;
  /**
   * Where the secondary stood at the last flush when it was ahead of the primary: it will not send the units
   * below this again, so the primary's units below it are released unverified (counted).
   */
  resumeSeq = 0;
  /** Sequence number of the last primary segment counted as released unverified (each is counted once). */
  lastUnverifiedSeq = 0;
}

/** One tracked flow: its two queues and the TCP stream comparison state. */
export class Connection implements KeyIndexEntry<Connection> {
  nextSameHash: Connection | null = null;
  prevSeen: Connection | null = null;
  nextSeen: Connection | null = null;
  prevUsed: Connection | null = null;
  nextUsed: Connection | null = null;
  readonly primary = new RingQueue<HeldPacket>(2);
  readonly secondary = new RingQueue<HeldPacket>(2);
  /** Set when this connection asked for a checkpoint; it then holds everything until flush. */
  diverged = false;
  /** The caller's time (ms) of the last packet looked up on this connection: idle eviction reads it. */
  lastUsed = 0;

  // TCP stream state (unused by the other kinds), reset by resetComparison().
  /** Each side's stream origin: the sequence number of its stream offset 0. */
  primaryBase = 0;
  secondaryBase = 0;
  hasPrimaryBase = false;
  hasSecondaryBase = false;
  /** Stream offset up to which both sides were compared equal (SYN and FIN count one, as in TCP). */
  matched = 0;
  /** False until the first unit is compared: until then a lower sequence number may still move the base. */
  comparedAny = false;
  /** Stream offsets already folded into the bases (see tcp.ts rebase): reported offsets add it back. */
  streamOrigin = 0;
  /** 1 when offset 0 is a SYN, so reported byte offsets count payload bytes only. */
  synUnits = 0;
  /** Highest (wrap-aware) ack the secondary has sent. */
  secondaryAck = 0;
  hasSecondaryAck = false;
  /** True while the head primary segment is compared but waits for the secondary's ack. */
  ackBlocked = false;
  /**
   * The secondary's head segment took part in a comparison, so its drop is not counted as a resend. A flag,
   * not a reference: storing each young packet in this long-lived object would add a write barrier per packet.
   * A segment inserted before a compared head miscounts twice, once each way, so the total stays right.
   */
  secondaryHeadCompared = false;

  /** Sequence alignment's record of both sides' progress; allocated on first use, so null in the default mode. */
  positions: TcpPositions | null = null;
  /**
   * Set by a flush in 'sequence' alignment: both sides share one base, so units at equal sequence numbers are
   * compared. Cleared by resetComparison() and by a SYN that starts a new stream.
   */
  alignedBySeq = false;
  /** Set when the secondary was ahead at that flush: see TcpPositions.resumeSeq. */
  hasResume = false;

  constructor(
    readonly row: number,
    readonly hash: number,
    readonly kind: ConnKind,
    readonly protocol: Protocol,
  ) {}

  get idle(): boolean {
    return this.primary.length === 0 && this.secondary.length === 0 && !this.diverged;
  }

  resetComparison(): void {
    this.diverged = false;
    this.hasPrimaryBase = false;
    this.hasSecondaryBase = false;
    this.primaryBase = 0;
    this.secondaryBase = 0;
    this.matched = 0;
    this.streamOrigin = 0;
    this.comparedAny = false;
    this.synUnits = 0;
    this.secondaryAck = 0;
    this.hasSecondaryAck = false;
    this.ackBlocked = false;
    this.alignedBySeq = false;
    this.hasResume = false;
    this.secondaryHeadCompared = false;
  }
}

/** How many idle connections from the least recently used end are looked at before growing past the bound. */
const EVICTION_SCAN = 16;

/**
 * The connection table: a KeyIndex finds a packet's connection by its key without allocating. Connections are
 * also on two lists: first-seen order (flush and the stale scan walk it) and least-recently-used order
 * (eviction takes from its front).
 *
 * The bound is hard: `size` never exceeds maxConnections. A new connection when the table is full takes the
 * place of an idle one (nothing held, not diverged) near the least recently used end; when there is none it is
 * refused (lookup returns null, counted in `refused`) and the caller passes its packet uncompared. Connections
 * with held packets are never discarded. Idle ones go at the caller's pace (evictIdle, trimToBound), so the
 * table shrinks back once traffic stops.
 */
export class ConnectionTable {
  private readonly index = new KeyIndex<Connection>(KEY_WORDS);
  private oldestSeen: Connection | null = null;
  private newestSeen: Connection | null = null;
  private leastUsed: Connection | null = null;
  private mostUsed: Connection | null = null;
  size = 0;
  /** Idle connections forgotten: to make room for a new one, or idle longer than the caller allows. */
  evictions = 0;
  /** New connections not tracked because the table was full and nothing near its LRU end was idle. */
  refused = 0;

  constructor(private readonly maxConnections: number) {}

  /** Connections in first-seen order (oldest first). */
  first(): Connection | null {
    return this.oldestSeen;
  }

  /**
   * The connection `info` belongs to, created if new; null when it is new and the table is full of connections
   * that hold packets (counted in `refused`). `kind` must follow from `info` the same way every time. `now`
   * (ms, the caller's clock) marks the connection used.
   */
  lookup(info: FrameInfo, kind: ConnKind, protocol: Protocol, now: number): Connection | null {
    const hash = this.fillKey(info, kind);
    const found = this.index.find(hash);
    if (found === null) return this.create(hash, kind, protocol, now);
    found.lastUsed = now;
    this.touch(found);
    return found;
  }

  /** Forget a connection (its queues must be empty). */
  remove(conn: Connection): void {
    this.index.delete(conn);
    if (conn.prevSeen !== null) conn.prevSeen.nextSeen = conn.nextSeen;
    else this.oldestSeen = conn.nextSeen;
    if (conn.nextSeen !== null) conn.nextSeen.prevSeen = conn.prevSeen;
    else this.newestSeen = conn.prevSeen;
    conn.prevSeen = conn.nextSeen = null;
    this.unlinkUsed(conn);
    this.size--;
  }

  /**
   * Forgets every idle connection last used before `cutoff` (the LRU list is in last-use order, so the walk
   * stops at the first one used since). Returns how many went.
   */
  evictIdle(cutoff: number): number {
    let evicted = 0;
    let conn = this.leastUsed;
    while (conn !== null && conn.lastUsed < cutoff) {
      const next = conn.nextUsed;
      if (conn.idle) {
        this.remove(conn);
        evicted++;
      }
      conn = next;
    }
    this.evictions += evicted;
    return evicted;
  }

  /** Forgets idle connections, least recently used first, until the table is within `bound`. */
  trimTo(bound: number): number {
    let evicted = 0;
    let conn = this.leastUsed;
    while (conn !== null && this.size > bound) {
      const next = conn.nextUsed;
      if (conn.idle) {
        this.remove(conn);
        evicted++;
      }
      conn = next;
    }
    this.evictions += evicted;
    return evicted;
  }

  /**
   * A connection for the key in the slab (no connection holds it), or null when the table is full. Kept out of
   * lookup so that lookup stays small: V8 then compiles it with the key, the chain walk and the LRU move
   * inlined (callgrind, established TCP: 7 % fewer instructions per packet than with this path inline).
   */
  private create(hash: number, kind: ConnKind, protocol: Protocol, now: number): Connection | null {
    if (this.size >= this.maxConnections && !this.makeRoom()) {
      this.refused++;
      return null;
    }
    // The key is still in the slab: making room frees a row but writes no key.
    const created = new Connection(this.index.slab.store(), hash, kind, protocol);
    created.lastUsed = now;
    this.index.insert(created);
    this.appendSeen(created);
    this.appendUsed(created);
    this.size++;
    return created;
  }

  private makeRoom(): boolean {
    let candidate = this.leastUsed;
    for (let i = 0; i < EVICTION_SCAN && candidate !== null; i++) {
      if (candidate.idle) {
        this.remove(candidate);
        this.evictions++;
        return true;
      }
      candidate = candidate.nextUsed;
    }
    return false;
  }

  private fillKey(info: FrameInfo, kind: ConnKind): number {
    const key = this.index.slab;
    // The version and kind in word 0 fix the key length, so a row never matches a shorter key by its prefix.
    key.begin((info.ipVersion << 28) | (kind << 24) | ((info.ipProtocol & 0xff) << 16) | ((info.vlanId + 1) & 0xffff));
    key.add((info.srcPort << 16) | info.dstPort);
    // ARP replies: the dissector puts the sender and target protocol addresses here.
    const addrBytes = Math.min(info.addrLength >>> 2, 4) << 2;
    key.addBytes(info.buf, info.srcAddrOffset, addrBytes);
    key.addBytes(info.buf, info.dstAddrOffset, addrBytes);
    return key.hash();
  }

  private touch(conn: Connection): void {
    if (this.mostUsed === conn) return;
    this.unlinkUsed(conn);
    this.appendUsed(conn);
  }

  private appendSeen(conn: Connection): void {
    conn.prevSeen = this.newestSeen;
    if (this.newestSeen !== null) this.newestSeen.nextSeen = conn;
    else this.oldestSeen = conn;
    this.newestSeen = conn;
  }

  private appendUsed(conn: Connection): void {
    conn.prevUsed = this.mostUsed;
    conn.nextUsed = null;
    if (this.mostUsed !== null) this.mostUsed.nextUsed = conn;
    else this.leastUsed = conn;
    this.mostUsed = conn;
  }

  private unlinkUsed(conn: Connection): void {
    if (conn.prevUsed !== null) conn.prevUsed.nextUsed = conn.nextUsed;
    else if (this.leastUsed === conn) this.leastUsed = conn.nextUsed;
    if (conn.nextUsed !== null) conn.nextUsed.prevUsed = conn.prevUsed;
    else if (this.mostUsed === conn) this.mostUsed = conn.prevUsed;
    conn.prevUsed = conn.nextUsed = null;
  }
}
