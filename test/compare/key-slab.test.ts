import { describe, expect, it } from 'vitest';
import { KeySlab } from '../../compare/key-slab.js';

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
