import { describe, expect, it } from 'vitest';
import { KeyIndex, KeySlab, type KeyIndexEntry } from '../../compare/key-slab.js';

function fill(slab: KeySlab, words: number[]): number {
  slab.begin(words.length);
  for (const word of words) slab.add(word);
  return slab.hash();
}

describe('KeySlab', () => {
  it('finds a stored key by its row and tells apart keys that differ in one word or in length', () => {
    const slab = new KeySlab(6);
    fill(slab, [1, 2, 3]);
    const row = slab.store();
    fill(slab, [1, 2, 4]);
    expect(slab.matches(row)).toBe(false);
    fill(slab, [1, 2]);
    expect(slab.matches(row)).toBe(false); // the first word is the length: no prefix match
    const hash = fill(slab, [1, 2, 3]);
    expect(slab.matches(row)).toBe(true);
    expect(hash).toBe(fill(slab, [1, 2, 3]));
    expect(Number.isInteger(hash) && hash >= 0 && hash < 2 ** 30).toBe(true);
  });

  it('reads addresses as big-endian words and grows past its first rows, keeping every stored key', () => {
    const slab = new KeySlab(4);
    const rows: number[] = [];
    for (let i = 0; i < 300; i++) {
      slab.begin(3);
      slab.addBytes(Buffer.from([10, 0, i >> 8, i & 0xff, 192, 168, 0, 1]), 0, 8);
      rows.push(slab.store());
    }
    slab.begin(3);
    slab.addBytes(Buffer.from([10, 0, 1, 7, 192, 168, 0, 1]), 0, 8);
    expect(rows.filter((row) => slab.matches(row))).toEqual([rows[263]]);
    expect(slab.hex(rows[263], 3)).toBe('000000030a000107c0a80001');
  });

  it('hands a freed row to the next key', () => {
    const slab = new KeySlab(2);
    fill(slab, [7]);
    const first = slab.store();
    slab.free(first);
    fill(slab, [8]);
    expect(slab.store()).toBe(first);
    expect(slab.matches(first)).toBe(true);
  });
});

class Entry implements KeyIndexEntry<Entry> {
  nextSameHash: Entry | null = null;
  constructor(
    readonly row: number,
    readonly hash: number,
  ) {}
}

describe('KeyIndex', () => {
  /** Writes `words` as the key; every key gets the same hash, so all entries share one chain. */
  function key(index: KeyIndex<Entry>, words: number[]): number {
    fill(index.slab, words);
    return 7;
  }
  function add(index: KeyIndex<Entry>, words: number[]): Entry {
    const hash = key(index, words);
    const entry = new Entry(index.slab.store(), hash);
    index.insert(entry);
    return entry;
  }

  it('finds each entry of a chain of equal hashes by its key, and none for a key not inserted', () => {
    const index = new KeyIndex<Entry>(4);
    const entries = [1, 2, 3].map((n) => add(index, [n, n]));
    for (const [i, n] of [1, 2, 3].entries()) expect(index.find(key(index, [n, n]))).toBe(entries[i]);
    expect(index.find(key(index, [4, 4]))).toBeNull();
    expect(index.find(fill(index.slab, [1, 1]))).toBeNull(); // found by the hash it was inserted with only
  });

  it('deletes the head, middle or tail of a chain, keeps the others findable and frees the row', () => {
    for (const gone of [0, 1, 2]) {
      const index = new KeyIndex<Entry>(4);
      const entries = [1, 2, 3].map((n) => add(index, [n]));
      index.delete(entries[gone]);
      expect(entries[gone].nextSameHash).toBeNull();
      for (const [i, n] of [1, 2, 3].entries())
        expect(index.find(key(index, [n]))).toBe(i === gone ? null : entries[i]);
      key(index, [9]);
      expect(index.slab.store()).toBe(entries[gone].row);
    }
  });

  it('forgets the hash once its last entry is deleted, and takes a new entry for it', () => {
    const index = new KeyIndex<Entry>(4);
    const only = add(index, [5]);
    index.delete(only);
    expect(index.find(key(index, [5]))).toBeNull();
    const again = add(index, [5]);
    expect(index.find(key(index, [5]))).toBe(again);
  });
});
