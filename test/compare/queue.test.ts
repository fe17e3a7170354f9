import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RingQueue } from '../../compare/queue.js';

describe('RingQueue', () => {
  it('is FIFO across growth (capacity doubles, order kept)', () => {
    const q = new RingQueue<number>(2);
    for (let i = 0; i < 3; i++) q.push(i);
    expect(q.shift()).toBe(0);
    for (let i = 3; i < 10; i++) q.push(i); // wraps, then grows while wrapped
    expect(q.capacity).toBe(16);
    const out: number[] = [];
    for (let v = q.shift(); v !== undefined; v = q.shift()) out.push(v);
    expect(out).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(q.length).toBe(0);
  });

  it('insertAt and removeAt keep the other entries in order, also when wrapped', () => {
    const q = new RingQueue<string>(4);
    q.push('x');
    q.push('a');
    q.shift();
    q.push('c');
    q.push('e'); // head is now at slot 1: entries wrap around the end
    q.insertAt(1, 'b');
    q.insertAt(3, 'd');
    expect([0, 1, 2, 3, 4].map((i) => q.at(i))).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(q.removeAt(2)).toBe('c');
    expect(q.removeAt(0)).toBe('a');
    expect([0, 1, 2].map((i) => q.at(i))).toEqual(['b', 'd', 'e']);
    expect(q.at(3)).toBeUndefined();
  });

  it('behaves like an array model under random operations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), value: fc.integer() }),
      fc.record({ kind: fc.constant('shift' as const) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer() }),
      fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const q = new RingQueue<number>(1);
        const model: number[] = [];
        for (const o of ops) {
          if (o.kind === 'push') {
            q.push(o.value);
            model.push(o.value);
          } else if (o.kind === 'shift') {
            expect(q.shift()).toBe(model.shift());
          } else if (o.kind === 'insert') {
            const at = o.at % (model.length + 1);
            q.insertAt(at, o.value);
            model.splice(at, 0, o.value);
          } else {
            const at = model.length === 0 ? 0 : o.at % model.length;
            expect(q.removeAt(at)).toBe(model.splice(at, 1)[0]);
          }
          expect(q.length).toBe(model.length);
        }
        expect(model.map((_, i) => q.at(i))).toEqual(model);
      }),
    );
  });
});
