/**
 * The sequence rewriter's connections, one per (client address, client port, VM address, VM port) whichever
 * way the frame goes. Keys live in a KeyIndex (compare/key-slab.ts), as in the comparison engine's table:
 * finding a frame's connection builds no string and allocates nothing; only a new connection allocates its
 * record. Connections are kept in first-tracked order for the sweep, eviction and status.
 */
import { KeyIndex, type KeyIndexEntry } from '../compare/key-slab.js';
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

export class RewriterConnection implements KeyIndexEntry<RewriterConnection> {
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
  private readonly index = new KeyIndex<RewriterConnection>(KEY_WORDS);
  private oldest: RewriterConnection | null = null;
  private newest: RewriterConnection | null = null;

  /** Connections in the order they were tracked (oldest first); follow `next` (read it before a removal). */
  first(): RewriterConnection | null {
    return this.oldest;
  }

  /** The connection of a frame from the client (`fromVm` false) or from a VM, or null. */
  find(info: FrameInfo, fromVm: boolean): RewriterConnection | null {
    return this.index.find(this.fillKey(info, fromVm));
  }

  /** A new connection for the frame's key; the caller has removed any connection with that key. */
  add(info: FrameInfo, fromVm: boolean, now: number): RewriterConnection {
    const hash = this.fillKey(info, fromVm);
    const keys = this.index.slab;
    const conn = new RewriterConnection(keys.store(), hash, keys.length, now);
    this.index.insert(conn);
    conn.prev = this.newest;
    if (this.newest !== null) this.newest.next = conn;
    else this.oldest = conn;
    this.newest = conn;
    this.size++;
    return conn;
  }

  remove(conn: RewriterConnection): void {
    this.index.delete(conn);
    if (conn.prev !== null) conn.prev.next = conn.next;
    else this.oldest = conn.next;
    if (conn.next !== null) conn.next.prev = conn.prev;
    else this.newest = conn.prev;
    conn.prev = conn.next = null;
    this.size--;
  }

  /** The connection's key as hex (address length, ports, client address, VM address), for status output. */
  keyHex(conn: RewriterConnection): string {
    return this.index.slab.hex(conn.row, conn.keyWords);
  }

  private fillKey(info: FrameInfo, fromVm: boolean): number {
    const keys = this.index.slab;
    const n = Math.min(info.addrLength, 16);
    keys.begin(n);
    keys.add(fromVm ? (info.dstPort << 16) | info.srcPort : (info.srcPort << 16) | info.dstPort);
    keys.addBytes(info.buf, fromVm ? info.dstAddrOffset : info.srcAddrOffset, n);
    keys.addBytes(info.buf, fromVm ? info.srcAddrOffset : info.dstAddrOffset, n);
    return keys.hash();
  }
}
