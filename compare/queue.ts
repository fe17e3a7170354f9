/**
 * A FIFO of held packets on a ring buffer. Capacity is a power of two and doubles when full, so pushing and
 * taking from either end never moves the other entries (no Array#shift, which is O(n) once the array leaves
 * V8's fast path). TCP inserts out-of-order segments in place (`insertAt`), datagram matching removes from
 * the middle (`removeAt`); both are O(distance) and rare next to push/shift.
 */
export class RingQueue<T> {
  private slots: (T | undefined)[];
  private mask: number;
  private head = 0;
  private count = 0;

  /** `initialCapacity` is rounded up to a power of two; small by default since most queues stay short. */
  constructor(initialCapacity = 4) {
    let capacity = 1;
    while (capacity < initialCapacity) capacity <<= 1;
    this.slots = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
  }

  get length(): number {
    return this.count;
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** The entry at position `index` from the head (0 = oldest), or undefined when out of range. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.count) return undefined;
    return this.slots[(this.head + index) & this.mask];
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.slots[this.head];
  }

  push(item: T): void {
    if (this.count > this.mask) this.grow();
    this.slots[(this.head + this.count) & this.mask] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.head];
    // Clear the slot so a released packet's buffer can be collected while the queue lives on.
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.count--;
    return item;
  }

  /** Insert so the new entry ends up at position `index` (0..length); later entries move one towards the tail. */
  insertAt(index: number, item: T): void {
    if (index < 0 || index > this.count) throw new RangeError(`insertAt(${index}) outside 0..${this.count}`);
    if (this.count > this.mask) this.grow();
    const slots = this.slots;
    const mask = this.mask;
    for (let i = this.count; i > index; i--) {
      slots[(this.head + i) & mask] = slots[(this.head + i - 1) & mask];
    }
    slots[(this.head + index) & mask] = item;
    this.count++;
  }

  /** Remove and return the entry at `index`; later entries move one towards the head. */
  removeAt(index: number): T | undefined {
    if (index < 0 || index >= this.count) return undefined;
    if (index === 0) return this.shift();
    const slots = this.slots;
    const mask = this.mask;
    const item = slots[(this.head + index) & mask];
    for (let i = index; i < this.count - 1; i++) {
      slots[(this.head + i) & mask] = slots[(this.head + i + 1) & mask];
    }
    slots[(this.head + this.count - 1) & mask] = undefined;
    this.count--;
    return item;
  }

  /** Empty the queue, keeping its capacity. */
  clear(): void {
    for (let i = 0; i < this.count; i++) this.slots[(this.head + i) & this.mask] = undefined;
    this.head = 0;
    this.count = 0;
  }

  /**
   * An empty queue whose ring grew past `maxCapacity` goes back to `capacity` slots: a connection that once held
   * thousands of packets should not keep their slots for as long as it lives. No-op unless empty.
   */
  shrinkIfEmpty(maxCapacity: number, capacity = 2): void {
    if (this.count !== 0 || this.mask + 1 <= maxCapacity) return;
    let size = 1;
    while (size < capacity) size <<= 1;
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.head = 0;
  }

  private grow(): void {
    const old = this.slots;
    const oldMask = this.mask;
    const capacity = (oldMask + 1) * 2;
    const slots = new Array<T | undefined>(capacity).fill(undefined);
    for (let i = 0; i < this.count; i++) slots[i] = old[(this.head + i) & oldMask];
    this.slots = slots;
    this.mask = capacity - 1;
    this.head = 0;
  }
}
