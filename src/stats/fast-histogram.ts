import { Histogram, type Registry } from 'prom-client';

interface BucketValue {
  labels: { le?: number | string };
  value: number;
  metricName: string;
  /** prom-client's own histograms carry null here for buckets (no exemplars); kept for identical JSON. */
  exemplar?: null;
}

/**
 * An unlabelled histogram for the per-frame path. prom-client's observe() allocates a closure and hashes
 * a label object on every call (about 150 ns here); add() is a bucket search and three number adds
 * (about 10 ns). The registry reads the buckets at scrape time through the same get()/getForPromString()
 * it uses for any histogram, so the exposition is identical to prom-client's own (a test checks this).
 */
export class FastHistogram extends Histogram<string> {
  private readonly bounds: readonly number[];
  /** Non-cumulative count per bucket; the last slot is +Inf. */
  private readonly counts: Float64Array;
  private total = 0;
  private sum = 0;
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(config: { name: string; help: string; buckets: number[]; registers: Registry[] }) {
    super({ name: config.name, help: config.help, buckets: config.buckets, registers: config.registers });
    this.metricName = config.name;
    this.metricHelp = config.help;
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.counts = new Float64Array(this.bounds.length + 1);
    // prom-client's constructor sets observe as an own property; remove it so the override below is used.
    delete (this as { observe?: unknown }).observe;
  }

  add(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.total++;
    this.sum += value;
  }

  /** Routes prom-client's own observe() into the same buckets, so either call counts once. */
  override observe(...args: unknown[]): void {
    const value = args.length === 1 ? args[0] : args[1];
    if (typeof value === 'number' && Number.isFinite(value)) this.add(value);
    else throw new TypeError(`Value is not a valid number: ${String(value)}`);
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if (this.counts === undefined) return;
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
  }

  // The shapes below are what prom-client's Registry reads from any histogram (labels, value, metricName).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override async get(): Promise<any> {
    return this.exposition();
  }

  async getForPromString(): Promise<ReturnType<FastHistogram['exposition']>> {
    return this.exposition();
  }

  private exposition() {
    const values: BucketValue[] = [];
    const bucketName = `${this.metricName}_bucket`;
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i];
      values.push({ labels: { le: this.bounds[i] }, value: cumulative, metricName: bucketName, exemplar: null });
    }
    values.push({ labels: { le: '+Inf' }, value: this.total, metricName: bucketName, exemplar: null });
    values.push({ labels: {}, value: this.sum, metricName: `${this.metricName}_sum` });
    values.push({ labels: {}, value: this.total, metricName: `${this.metricName}_count` });
    return {
      name: this.metricName,
      help: this.metricHelp,
      type: 'histogram' as const,
      values,
      aggregator: 'sum' as const,
    };
  }
}
