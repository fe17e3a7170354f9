/**
 * Flow keys without a string per packet: the caller writes the key being looked up into `key` (32-bit words),
 * `hash()` gives a small integer for a Map, and `matches(row)` checks a candidate against its stored row. Rows
 * live in one Int32Array slab, so a lookup allocates nothing and a tracked key costs no object of its own.
 * KeyIndex below adds the Map of hash chains; the comparison engine's and the rewriter's tables both use it.
 */
export class KeySlab {
  /** The key being looked up or stored: its first `length` words. */
  readonly key: Int32Array;
  length = 0;
  private rows: Int32Array;
  private rowsUsed = 0;
  private readonly freeRows: number[] = [];

  /** `width`: the most words a key can have. */
  constructor(private readonly width: number) {
    this.key = new Int32Array(width);
    this.rows = new Int32Array(width * 64);
  }

  /** Starts a new key with its first word; callers put the key's length in it, so rows never match by prefix. */
  begin(first: number): void {
    this.key[0] = first;
    this.length = 1;
  }

  add(word: number): void {
    this.key[this.length++] = word;
  }

  /** Adds `bytes` bytes of `buf` from `offset`, as big-endian words (`bytes` a multiple of 4). */
  addBytes(buf: Buffer, offset: number, bytes: number): void {
    // Locals, not fields, in the loop: a field store per word cost the engine about 0.5 % (callgrind).
    const key = this.key;
    let length = this.length;
    for (let at = offset, end = offset + bytes; at < end; at += 4)
      key[length++] = (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3];
    this.length = length;
  }

  /** A 30-bit hash of the key: a small integer, so V8 keeps it unboxed as a Map key. */
  hash(): number {
    const key = this.key;
    const length = this.length;
    let h = 0x811c9dc5;
    for (let i = 0; i < length; i++) {
      h = Math.imul(h ^ key[i], 0x01000193);
      h ^= h >>> 15;
    }
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
    return (h ^ (h >>> 16)) & 0x3fffffff;
  }

  /** The stored row holds the key. */
  matches(row: number): boolean {
    const rows = this.rows;
    const key = this.key;
    const base = row * this.width;
    const length = this.length;
    for (let i = 0; i < length; i++) if (rows[base + i] !== key[i]) return false;
    return true;
  }

  /** Stores the key in a free row and returns the row. */
  store(): number {
    let row = this.freeRows.pop();
    if (row === undefined) {
      row = this.rowsUsed++;
      if (this.rowsUsed * this.width > this.rows.length) {
        const grown = new Int32Array(this.rows.length * 2);
        grown.set(this.rows);
        this.rows = grown;
      }
    }
    this.rows.set(this.key.subarray(0, this.length), row * this.width);
    return row;
  }

  free(row: number): void {
    this.freeRows.push(row);
  }

  /** A row as hex, for status output and logs. */
  hex(row: number, words: number): string {
    let out = '';
    for (let i = 0; i < words; i++) out += (this.rows[row * this.width + i] >>> 0).toString(16).padStart(8, '0');
    return out;
  }
}

/** What a KeyIndex keeps per key: the slab row holding its words, its hash, the next entry with that hash. */
export interface KeyIndexEntry<T> {
  readonly row: number;
  readonly hash: number;
  nextSameHash: T | null;
}

/**
 * Entries found by key: a Map from the 30-bit key hash to a chain of the entries with that hash, each checked
 * against its row in `slab`. The caller writes a key into `slab`, then finds it, or stores it (`slab.store()`)
 * for a new entry's row and inserts the entry.
 */
export class KeyIndex<T extends KeyIndexEntry<T>> {
  readonly slab: KeySlab;
  private readonly byHash = new Map<number, T>();

  /** `width`: the most words a key can have. */
  constructor(width: number) {
    this.slab = new KeySlab(width);
  }

  /** The entry holding the slab's current key, whose hash is `hash`, or null. */
  find(hash: number): T | null {
    for (let entry = this.byHash.get(hash) ?? null; entry !== null; entry = entry.nextSameHash)
      if (this.slab.matches(entry.row)) return entry;
    return null;
  }

  /** Adds an entry whose key no entry holds yet; its row is from `slab.store()`. */
  insert(entry: T): void {
    entry.nextSameHash = this.byHash.get(entry.hash) ?? null;
    this.byHash.set(entry.hash, entry);
  }

  /** Takes an inserted entry out and frees its row. */
  delete(entry: T): void {
    const head = this.byHash.get(entry.hash) ?? null;
    if (head === entry) {
      if (entry.nextSameHash === null) this.byHash.delete(entry.hash);
      else this.byHash.set(entry.hash, entry.nextSameHash);
    } else {
      let prev = head;
      while (prev !== null && prev.nextSameHash !== entry) prev = prev.nextSameHash;
      if (prev !== null) prev.nextSameHash = entry.nextSameHash;
    }
    entry.nextSameHash = null;
    this.slab.free(entry.row);
  }
}
