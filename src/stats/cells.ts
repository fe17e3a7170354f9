import type { Counter } from 'prom-client';

/**
 * Running counts for labelled counters, kept in plain numbers so the hot path does no label hashing;
 * each counter's collect() hook publishes the difference since the previous scrape.
 */

/** One label combination's running count, published to prom-client lazily at scrape time. */
export interface Cell {
  readonly labels: Record<string, string>;
  value: number;
  published: number;
}

/** Pushes what `cell` counted since the last scrape into the prom-client counter. */
export function publishCell(counter: Counter<string>, cell: Cell): void {
  if (cell.value !== cell.published) counter.inc(cell.labels, cell.value - cell.published);
  cell.published = cell.value;
}

/**
 * Counts keyed by two label values without building a key string per increment: the hot path does two
 * Map lookups and an integer add. Cells are created on first use, so unknown reasons are still counted.
 */
export class CellTable {
  private readonly rows = new Map<string, Map<string, Cell>>();
  constructor(private readonly labelNames: readonly [string] | readonly [string, string]) {}

  cell(first: string, second = ''): Cell {
    let row = this.rows.get(first);
    if (row === undefined) {
      row = new Map();
      this.rows.set(first, row);
    }
    let cell = row.get(second);
    if (cell === undefined) {
      const labels: Record<string, string> = { [this.labelNames[0]]: first };
      if (this.labelNames.length === 2) labels[this.labelNames[1]] = second;
      cell = { labels, value: 0, published: 0 };
      row.set(second, cell);
    }
    return cell;
  }

  *cells(): IterableIterator<Cell> {
    for (const row of this.rows.values()) yield* row.values();
  }

  total(): number {
    let sum = 0;
    for (const cell of this.cells()) sum += cell.value;
    return sum;
  }

  /** Sum by one label: e.g. divergences by reason, whatever the protocol. */
  by(labelIndex: 0 | 1): Record<string, number> {
    const out: Record<string, number> = {};
    const name = this.labelNames[labelIndex] ?? this.labelNames[0];
    for (const cell of this.cells()) {
      const key = cell.labels[name];
      out[key] = (out[key] ?? 0) + cell.value;
    }
    return sortKeys(out);
  }

  /** Pushes what was counted since the last scrape into the prom-client counter. */
  publish(counter: Counter<string>): void {
    for (const cell of this.cells()) publishCell(counter, cell);
  }
}

function sortKeys(record: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key];
  return out;
}
