import type { LatencySummary } from './summary.js';

/**
 * Exact percentiles of compare latency. Most frames are released the moment their twin arrives (latency
 * 0), so zeros are only counted and the rest kept in a growable Float64Array: no object per frame.
 */
export class LatencyRecorder {
  private zeros = 0;
  private values = new Float64Array(1024);
  private used = 0;

  add(ms: number): void {
    if (ms <= 0) {
      this.zeros++;
      return;
    }
    if (this.used === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.used++] = ms;
  }

  summary(): LatencySummary {
    const count = this.zeros + this.used;
    if (count === 0) return { count: 0, p50: null, p99: null, max: null };
    const sorted = this.values.subarray(0, this.used).sort();
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    const at = (p: number): number => {
      const rank = Math.max(1, Math.ceil(p * count));
      return rank <= this.zeros ? 0 : round(sorted[rank - this.zeros - 1]);
    };
    return { count, p50: at(0.5), p99: at(0.99), max: this.used === 0 ? 0 : round(sorted[this.used - 1]) };
  }
}

/** Microsecond resolution in the summary: finer digits are float noise from the timestamp arithmetic. */
export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
