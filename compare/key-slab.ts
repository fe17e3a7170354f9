/**
 * Flow keys without a string per packet: the caller writes the key being looked up into `key` (32-bit words),
 * `hash()` gives a small integer for a Map, and `matches(row)` checks a candidate against its stored row. Rows
 * live in one Int32Array slab, so a lookup allocates nothing and a tracked key costs no object of its own.
 * The technique of the comparison engine's connection table (conntrack.ts), as a piece others can use.
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
    for (let at = offset; at < offset + bytes; at += 4)
      this.key[this.length++] = (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3];
  }

  /** A 30-bit hash of the key: a small integer, so V8 keeps it unboxed as a Map key. */
  hash(): number {
    const key = this.key;
    let h = 0x811c9dc5;
    for (let i = 0; i < this.length; i++) {
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
    for (let i = 0; i < this.length; i++) if (rows[base + i] !== key[i]) return false;
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
