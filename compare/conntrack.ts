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
 * Keys live in one Int32Array slab (a row per connection) instead of a string per packet or a typed
 * array per connection: looking up costs no allocation and an idle connection no extra object.
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
export class Connection {
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
    readonly slot: number,
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

function readWord(buf: Buffer, offset: number): number {
  return (buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3];
}

/** How many idle connections from the least recently used end are looked at before growing past the bound. */
const EVICTION_SCAN = 16;

/**
 * The connection table: a Map from a 30-bit key hash (a small integer, so V8 keeps it unboxed) to a chain of
 * connections with that hash, each checked against its key row. Connections are also on two lists: first-seen
 * order (flush and the stale scan walk it) and least-recently-used order (eviction takes from its front).
 *
 * The bound is hard: `size` never exceeds maxConnections. A new connection when the table is full takes the
 * place of an idle one (nothing held, not diverged) near the least recently used end; when there is none it is
 * refused (lookup returns null, counted in `refused`) and the caller passes its packet uncompared. Connections
 * with held packets are never discarded. Idle ones go at the caller's pace (evictIdle, trimToBound), so the
 * table shrinks back once traffic stops.
 */
export class ConnectionTable {
  private readonly byHash = new Map<number, Connection>();
  private keys = new Int32Array(KEY_WORDS * 64);
  private slotsUsed = 0;
  private readonly freeSlots: number[] = [];
  private readonly scratch = new Int32Array(KEY_WORDS);
  private scratchLength = 0;
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
    const head = this.byHash.get(hash) ?? null;
    let conn = head;
    while (conn !== null) {
      if (this.keyMatches(conn.slot)) {
        conn.lastUsed = now;
        this.touch(conn);
        return conn;
      }
      conn = conn.nextSameHash;
    }
    if (this.size >= this.maxConnections && !this.makeRoom()) {
      this.refused++;
      return null;
    }
    const created = new Connection(this.allocateSlot(), hash, kind, protocol);
    created.lastUsed = now;
    created.nextSameHash = head;
    this.byHash.set(hash, created);
    this.appendSeen(created);
    this.appendUsed(created);
    this.size++;
    return created;
  }

  /** Forget a connection (its queues must be empty). */
  remove(conn: Connection): void {
    const head = this.byHash.get(conn.hash);
    if (head === conn) {
      if (conn.nextSameHash === null) this.byHash.delete(conn.hash);
      else this.byHash.set(conn.hash, conn.nextSameHash);
    } else {
      let prev = head ?? null;
      while (prev !== null && prev.nextSameHash !== conn) prev = prev.nextSameHash;
      if (prev !== null) prev.nextSameHash = conn.nextSameHash;
    }
    conn.nextSameHash = null;
    if (conn.prevSeen !== null) conn.prevSeen.nextSeen = conn.nextSeen;
    else this.oldestSeen = conn.nextSeen;
    if (conn.nextSeen !== null) conn.nextSeen.prevSeen = conn.prevSeen;
    else this.newestSeen = conn.prevSeen;
    conn.prevSeen = conn.nextSeen = null;
    this.unlinkUsed(conn);
    this.freeSlots.push(conn.slot);
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
    const buf = info.buf;
    const key = this.scratch;
    key[0] = (info.ipVersion << 28) | (kind << 24) | ((info.ipProtocol & 0xff) << 16) | ((info.vlanId + 1) & 0xffff);
    key[1] = (info.srcPort << 16) | info.dstPort;
    // ARP replies: the dissector puts the sender and target protocol addresses here.
    let words = 2;
    const addrWords = Math.min(info.addrLength >>> 2, 4);
    for (let i = 0; i < addrWords; i++) key[words++] = readWord(buf, info.srcAddrOffset + 4 * i);
    for (let i = 0; i < addrWords; i++) key[words++] = readWord(buf, info.dstAddrOffset + 4 * i);
    this.scratchLength = words;
    let h = 0x811c9dc5;
    for (let i = 0; i < words; i++) {
      h = Math.imul(h ^ key[i], 0x01000193);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
    return (h ^ (h >>> 16)) & 0x3fffffff;
  }

  private keyMatches(slot: number): boolean {
    const keys = this.keys;
    const key = this.scratch;
    const base = slot * KEY_WORDS;
    for (let i = 0; i < this.scratchLength; i++) if (keys[base + i] !== key[i]) return false;
    return true;
  }

  private allocateSlot(): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.slotsUsed++;
      if (this.slotsUsed * KEY_WORDS > this.keys.length) {
        const grown = new Int32Array(this.keys.length * 2);
        grown.set(this.keys);
        this.keys = grown;
      }
    }
    // The version and kind in word 0 fix the key length, so stale words past it are never compared.
    this.keys.set(this.scratch.subarray(0, this.scratchLength), slot * KEY_WORDS);
    return slot;
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
