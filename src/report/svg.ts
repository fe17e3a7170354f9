import { ellipsize, esc, fmtInt, fmtMs, niceStep, niceTicks } from './format.js';

/**
 * The report's plots, drawn as inline SVG strings: no chart library and no script, so the page is
 * self-contained and renders the same with JavaScript off. Every mark carries a <title> (the browser's
 * tooltip) with its exact numbers; every plot has class "plot" and a data-marks count for tests.
 */

/** The largest value, without spreading into Math.max (a long list would overflow the call stack). */
function maxOf<T>(items: readonly T[], value: (item: T) => number, floor: number): number {
  let max = floor;
  for (const item of items) {
    const v = value(item);
    if (v > max) max = v;
  }
  return max;
}

/** Okabe–Ito colours: distinguishable with the common colour-vision deficiencies. */
const reasonColours: Record<string, string> = {
  payload: '#D55E00',
  length: '#E69F00',
  flags: '#CC79A7',
  ack: '#0072B2',
  timeout: '#56B4E9',
  overflow: '#000000',
  timer: '#009E73',
};
const spareColours = ['#999999', '#F0E442', '#882255', '#44AA99', '#117733', '#332288'];

/** A stable colour for any reason, including ones this version does not know. */
export function reasonColour(reason: string): string {
  const known = reasonColours[reason];
  if (known !== undefined) return known;
  let hash = 0;
  for (let i = 0; i < reason.length; i++) hash = (hash * 31 + reason.charCodeAt(i)) >>> 0;
  return spareColours[hash % spareColours.length];
}

/** Known reasons first in their documented order, then any others alphabetically. */
export function orderReasons(reasons: Iterable<string>): string[] {
  const known = Object.keys(reasonColours);
  return [...new Set(reasons)].sort((a, b) => {
    const ia = known.indexOf(a);
    const ib = known.indexOf(b);
    if (ia >= 0 && ib >= 0) return ia - ib;
    if (ia >= 0) return -1;
    if (ib >= 0) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function emptyPlot(id: string, label: string, message: string, width: number): string {
  return (
    `<svg class="plot empty" id="${esc(id)}" data-marks="0" role="img" aria-label="${esc(label)}" ` +
    `viewBox="0 0 ${width} 60" width="100%" xmlns="http://www.w3.org/2000/svg">` +
    `<title>${esc(label)}</title><rect x="0.5" y="0.5" width="${width - 1}" height="59" rx="6" class="frame"/>` +
    `<text x="${width / 2}" y="35" text-anchor="middle" class="muted">${esc(message)}</text></svg>`
  );
}

export interface Bar {
  label: string;
  value: number;
  colour: string;
  /** Tooltip text; defaults to "label: value". */
  tip?: string;
}

/** Horizontal bars, largest first as given; labels on the left, values at the bar ends. */
export function barChart(id: string, label: string, bars: Bar[], options: { width?: number; mono?: boolean } = {}) {
  const width = options.width ?? 520;
  if (bars.length === 0 || bars.every((b) => b.value === 0)) return emptyPlot(id, label, 'none', width);
  const rowHeight = 24;
  // Wide enough for the longest label (an IPv6 connection is ~60 characters), within reason.
  const labelChars = options.mono ? 60 : 18;
  const charWidth = options.mono ? 7 : 7.2;
  const longest = Math.min(
    labelChars,
    maxOf(bars, (b) => b.label.length, 0),
  );
  const labelWidth = Math.max(80, Math.ceil(longest * charWidth) + 16);
  const valueWidth = 56;
  const plotWidth = width - labelWidth - valueWidth;
  const height = bars.length * rowHeight + 8;
  const max = maxOf(bars, (b) => b.value, 0);
  const parts: string[] = [];
  bars.forEach((bar, i) => {
    const y = 4 + i * rowHeight;
    const w = max > 0 ? Math.max(bar.value > 0 ? 2 : 0, (bar.value / max) * plotWidth) : 0;
    const tip = bar.tip ?? `${bar.label}: ${fmtInt(bar.value)}`;
    parts.push(
      `<g class="bar"><title>${esc(tip)}</title>` +
        `<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end" class="${options.mono ? 'label mono' : 'label'}">` +
        `${esc(ellipsize(bar.label, labelChars))}</text>` +
        `<rect class="mark" x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" rx="3" ` +
        `fill="${esc(bar.colour)}"/>` +
        `<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 16}" class="value">${fmtInt(bar.value)}</text></g>`,
    );
  });
  return (
    `<svg class="plot" id="${esc(id)}" data-marks="${bars.length}" role="img" aria-label="${esc(label)}" ` +
    `viewBox="0 0 ${width} ${height}" width="100%" xmlns="http://www.w3.org/2000/svg">` +
    `<title>${esc(label)}</title>${parts.join('')}</svg>`
  );
}

export interface TimedEvent {
  time: number;
  reason: string;
}

/**
 * Divergences (bars up) and checkpoints (bars down) over time, stacked by reason, in time bins of a round
 * width. Binning keeps the SVG small however long the replay was.
 */
export function timelineChart(
  id: string,
  label: string,
  endMs: number,
  divergences: TimedEvent[],
  checkpoints: TimedEvent[],
  width = 1040,
): string {
  if (divergences.length === 0 && checkpoints.length === 0) {
    return emptyPlot(id, label, 'no divergences and no checkpoints', width);
  }
  const byTime = (e: TimedEvent): number => e.time;
  const lastEvent = Math.max(maxOf(divergences, byTime, 0), maxOf(checkpoints, byTime, 0));
  const span = Math.max(endMs, lastEvent, 1);
  const binMs = niceStep(span / 60);
  const binCount = Math.max(1, Math.ceil((span + binMs * 1e-9) / binMs));
  const bin = (t: number): number => Math.min(binCount - 1, Math.max(0, Math.floor(t / binMs)));

  const count = (events: TimedEvent[]) => {
    const bins: Map<string, number>[] = Array.from({ length: binCount }, () => new Map());
    for (const e of events) {
      const m = bins[bin(e.time)];
      m.set(e.reason, (m.get(e.reason) ?? 0) + 1);
    }
    return bins;
  };
  const up = count(divergences);
  const down = count(checkpoints);
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const maxUp = maxOf(up, total, 1);
  const maxDown = maxOf(down, total, 1);

  const left = 56;
  const right = 12;
  const plotWidth = width - left - right;
  const upHeight = 180;
  const downHeight = 90;
  const top = 14;
  const axisY = top + upHeight;
  const height = axisY + downHeight + 40;
  const barWidth = plotWidth / binCount;
  const x = (t: number): number => left + (t / (binCount * binMs)) * plotWidth;

  const parts: string[] = [];
  const upTicks = niceTicks(maxUp, 4, true).ticks;
  const upMax = upTicks[upTicks.length - 1];
  const downTicks = niceTicks(maxDown, 2, true).ticks;
  const downMax = downTicks[downTicks.length - 1];
  for (const v of upTicks) {
    const y = axisY - (v / upMax) * upHeight;
    parts.push(`<line class="grid" x1="${left}" x2="${width - right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/>`);
    parts.push(`<text class="tick" x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmtInt(v)}</text>`);
  }
  for (const v of downTicks.slice(1)) {
    const y = axisY + (v / downMax) * downHeight;
    parts.push(`<line class="grid" x1="${left}" x2="${width - right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/>`);
    parts.push(`<text class="tick" x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmtInt(v)}</text>`);
  }

  let marks = 0;
  const stack = (bins: Map<string, number>[], direction: 1 | -1, max: number, extent: number, noun: string) => {
    bins.forEach((m, i) => {
      let offset = 0;
      for (const reason of orderReasons(m.keys())) {
        const n = m.get(reason) ?? 0;
        const h = (n / max) * extent;
        const y = direction === -1 ? axisY - offset - h : axisY + offset;
        const from = i * binMs;
        const tip = `${fmtMs(from)} – ${fmtMs(from + binMs)}: ${fmtInt(n)} ${noun}${n === 1 ? '' : 's'} (${reason})`;
        parts.push(
          `<rect class="mark" x="${(left + i * barWidth + 0.5).toFixed(1)}" y="${y.toFixed(1)}" ` +
            `width="${Math.max(1, barWidth - 1).toFixed(1)}" height="${Math.max(h, 1).toFixed(1)}" ` +
            `fill="${reasonColour(reason)}"><title>${esc(tip)}</title></rect>`,
        );
        offset += h;
        marks++;
      }
    });
  };
  stack(up, -1, upMax, upHeight, 'divergence');
  stack(down, 1, downMax, downHeight, 'checkpoint');

  parts.push(`<line class="axis" x1="${left}" x2="${width - right}" y1="${axisY}" y2="${axisY}"/>`);
  const timeTicks = niceTicks(binCount * binMs, 8);
  for (const t of timeTicks.ticks) {
    if (t > binCount * binMs) break;
    const tx = x(t).toFixed(1);
    const by = axisY + downHeight;
    parts.push(`<line class="axis" x1="${tx}" x2="${tx}" y1="${by}" y2="${by + 5}"/>`);
    parts.push(`<text class="tick" x="${tx}" y="${by + 18}" text-anchor="middle">${esc(fmtMs(t))}</text>`);
  }
  parts.push(
    `<text class="side-label" x="14" y="${axisY - upHeight / 2}" transform="rotate(-90 14 ${axisY - upHeight / 2})" ` +
      `text-anchor="middle">divergences</text>`,
    `<text class="side-label" x="14" y="${axisY + downHeight / 2}" ` +
      `transform="rotate(-90 14 ${axisY + downHeight / 2})" text-anchor="middle">checkpoints</text>`,
    `<text class="tick" x="${width - right}" y="${height - 4}" text-anchor="end">` +
      `virtual time since the first frame · bins of ${esc(fmtMs(binMs))}</text>`,
  );
  return (
    `<svg class="plot" id="${esc(id)}" data-marks="${marks}" role="img" aria-label="${esc(label)}" ` +
    `viewBox="0 0 ${width} ${height}" width="100%" xmlns="http://www.w3.org/2000/svg">` +
    `<title>${esc(label)}</title>${parts.join('')}</svg>`
  );
}

/** A legend of reason colours, as HTML (it wraps better than SVG text). */
export function legend(reasons: string[]): string {
  if (reasons.length === 0) return '';
  const items = orderReasons(reasons).map(
    (r) => `<span class="key"><span class="swatch" style="background:${reasonColour(r)}"></span>${esc(r)}</span>`,
  );
  return `<div class="legend">${items.join('')}</div>`;
}
