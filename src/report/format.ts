/**
 * Text helpers for the HTML report. Everything from the data goes through esc(): file names, connection
 * strings and details come from captures and command lines, so they may hold markup.
 */

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and double- or single-quoted attributes (also inside SVG). */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => entities[c]);
}

/** An integer with thin-space thousands separators; locale-independent so the page is deterministic. */
export function fmtInt(value: number): string {
  if (!Number.isFinite(value)) return esc(value);
  const sign = value < 0 ? '-' : '';
  return sign + String(Math.round(Math.abs(value))).replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
}

/** A duration given in ms, in the unit that reads best: "850 µs", "12.5 ms", "3.2 s", "4 min 10 s". */
export function fmtMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '–';
  const abs = Math.abs(ms);
  if (abs === 0) return '0 ms';
  if (abs < 1) return `${trim(ms * 1000, 0)} µs`;
  if (abs < 1000) return `${trim(ms, abs < 10 ? 2 : 1)} ms`;
  if (abs < 120_000) return `${trim(ms / 1000, 2)} s`;
  const minutes = Math.floor(abs / 60_000);
  const seconds = Math.round((abs - minutes * 60_000) / 1000);
  return `${ms < 0 ? '-' : ''}${minutes} min${seconds > 0 ? ` ${seconds} s` : ''}`;
}

/** A number with at most `digits` decimals and no trailing zeros. */
export function trim(value: number, digits: number): string {
  return String(Number(value.toFixed(digits)));
}

/** Cuts long labels for chart axes; the full text goes into the mark's tooltip. */
export function ellipsize(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

/**
 * "Nice" round steps for axes and time bins: 1, 2 or 5 times a power of ten, at least `raw`.
 */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** Axis ticks from 0 to at least `max`, about `count` of them; whole steps only for counts (`integer`). */
export function niceTicks(max: number, count: number, integer = false): { step: number; ticks: number[] } {
  const raw = niceStep(Math.max(max, 1e-9) / Math.max(count, 1));
  const step = integer ? Math.max(1, raw) : raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return { step, ticks };
}
