/**
 * TCP sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4). Every comparison or difference of
 * sequence or acknowledgment numbers goes through these: a raw `<` breaks when the space wraps.
 * "a before b" means b is less than 2^31 ahead of a.
 */

/** a comes before b. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** a + n, wrapped to an unsigned 32-bit value (n may be negative). */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The signed distance from b to a (a - b), in [-2^31, 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return seqLt(a, b) ? b : a;
}

/** The earlier of two sequence numbers. */
export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}
