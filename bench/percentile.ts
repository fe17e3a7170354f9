/**
 * The benches' one rank rule: the value at index floor(fraction × n) of the sorted samples (the last for
 * fraction 1). Callers sort; the figures of every bench are comparable because they share it.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}
