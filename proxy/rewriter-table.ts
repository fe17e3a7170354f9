/**
 * The sequence rewriter's connections, one per (client address, client port, VM address, VM port) whichever
 * way the frame goes. Keys live in a KeySlab (compare/key-slab.ts), the technique of the comparison engine's
 * table: finding a frame's connection builds no string and allocates nothing; only a new connection
 * allocates its record. Connections are kept in first-tracked order for the sweep, eviction and status.
 */
import { KeySlab } from '../compare/key-slab.js';
import type { FrameInfo } from '../compare/wire/frame-info.js';

export const enum Phase {
  /** Handshake in progress: one or both VM ISNs missing. */
  Learning = 0,
  Established = 1,
  /** Both FINs or an RST seen: forgotten after lingerMs. */
  Closing = 2,
}

/** Key words: [address length, client port | VM port, client address…, VM address…]; IPv6 needs 2 + 4 + 4. */
const KEY_WORDS = 10;

export class RewriterConnection {
  phase = Phase.Learning;
  primaryIsn = 0;
  secondaryIsn = 0;
  hasPrimaryIsn = false;
  hasSecondaryIsn = false;
  offset = 0;
  /** TSval of each VM's SYN or SYN|ACK; their difference maps TCP timestamps like sequence numbers. */
  primaryTs = -1;
  secondaryTs = -1;
  tsOffset = 0;
  /** End (wrap-aware highest seq + units) of what the secondary has sent, in its own space. */
  secondaryEnd = 0;
  hasSecondaryEnd = false;
  clientFin = false;
  vmFin = false;
  closedAt = 0;
  /** Client frames waiting for the offset, re-dissected when released. */
  held: Buffer[] = [];
  /** Secondary frames (its SYN-ACK) that came before the primary's ISN: mapped and released with the offset. */
  heldSecondary: Buffer[] = [];
  nextSameHash: RewriterConnection | null = null;
  prev: RewriterConnection | null = null;
  next: RewriterConnection | null = null;

  constructor(
    readonly row: number,
    readonly hash: number,
    readonly keyWords: number,
    public lastSeen: number,
  ) {}
}

export class RewriterTable {
  size = 0;
  private readonly keys = new KeySlab(KEY_WORDS);
  private readonly byHash = new Map<number, RewriterConnection>();
  private oldest: RewriterConnection | null = null;
  private newest: RewriterConnection | null = null;

  /** Connections in the order they were tracked (oldest first); follow `next` (read it before a removal). */
  first(): RewriterConnection | null {
    return this.oldest;
  }

  /** The connection of a frame from the client (`fromVm` false) or from a VM, or null. */
  find(info: FrameInfo, fromVm: boolean): RewriterConnection | null {
    const hash = this.fillKey(info, fromVm);
    for (let conn = this.byHash.get(hash) ?? null; conn !== null; conn = conn.nextSameHash)
      if (this.keys.matches(conn.row)) return conn;
    return null;
  }

  /** A new connection for the frame's key; the caller has removed any connection with that key. */
  add(info: FrameInfo, fromVm: boolean, now: number): RewriterConnection {
    const hash = this.fillKey(info, fromVm);
    const conn = new RewriterConnection(this.keys.store(), hash, this.keys.length, now);
    conn.nextSameHash = this.byHash.get(hash) ?? null;
    this.byHash.set(hash, conn);
    conn.prev = this.newest;
    if (this.newest !== null) this.newest.next = conn;
    else this.oldest = conn;
    this.newest = conn;
    this.size++;
    return conn;
  }

  remove(conn: RewriterConnection): void {
    const head = this.byHash.get(conn.hash) ?? null;
    if (head === conn) {
      if (conn.nextSameHash === null) this.byHash.delete(conn.hash);
      else this.byHash.set(conn.hash, conn.nextSameHash);
    } else {
      let prev = head;
      while (prev !== null && prev.nextSameHash !== conn) prev = prev.nextSameHash;
      if (prev !== null) prev.nextSameHash = conn.nextSameHash;
    }
    conn.nextSameHash = null;
    if (conn.prev !== null) conn.prev.next = conn.next;
    else this.oldest = conn.next;
    if (conn.next !== null) conn.next.prev = conn.prev;
    else this.newest = conn.prev;
    conn.prev = conn.next = null;
    this.keys.free(conn.row);
    this.size--;
  }

  /** The connection's key as hex (address length, ports, client address, VM address), for status output. */
  keyHex(conn: RewriterConnection): string {
    return this.keys.hex(conn.row, conn.keyWords);
  }

  private fillKey(info: FrameInfo, fromVm: boolean): number {
    const keys = this.keys;
    const n = Math.min(info.addrLength, 16);
    keys.begin(n);
    keys.add(fromVm ? (info.dstPort << 16) | info.srcPort : (info.srcPort << 16) | info.dstPort);
    keys.addBytes(info.buf, fromVm ? info.dstAddrOffset : info.srcAddrOffset, n);
    keys.addBytes(info.buf, fromVm ? info.srcAddrOffset : info.dstAddrOffset, n);
    return keys.hash();
  }
}
