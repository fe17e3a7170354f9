import { describe, expect, it } from 'vitest';
import type { DivergenceReason } from '../../compare/types.js';
import { esc, fmtInt, fmtMs, niceStep, niceTicks } from '../../src/report/format.js';
import { hexWindow } from '../../src/report/hex.js';
import { renderReport } from '../../src/report/html.js';
import { reasonColour, timelineChart } from '../../src/report/svg.js';
import { fixtureSummary, hostileDetail, hostileFile, quietSummary } from './fixture.js';

/** The text of every <title> inside the element with this id. */
function titlesIn(html: string, id: string): string[] {
  const start = html.indexOf(`id="${id}"`);
  const end = html.indexOf('</svg>', start);
  return [...html.slice(start, end).matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1]);
}

describe('renderReport', () => {
  it('is one self-contained page: no script, no external reference', () => {
    const html = renderReport(fixtureSummary());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    expect(html).not.toMatch(/<[^>]*\s(?:src|href)\s*=/i);
    // The SVG namespace is the only URL, and it is an identifier, never fetched.
    expect([...html.matchAll(/https?:\/\/[^"\s]+/g)].map((m) => m[0])).toEqual(
      Array(4).fill('http://www.w3.org/2000/svg'),
    );
  });

  it('escapes every string from the data', () => {
    const html = renderReport(fixtureSummary());
    expect(html).not.toContain(hostileDetail);
    expect(html).toContain(esc(hostileDetail));
    expect(html).not.toContain('<svg onload');
    expect(html).toContain(esc(hostileFile));
    const quiet = renderReport(quietSummary());
    expect(quiet).not.toContain('<b>secondary</b>');
    expect(quiet).toContain('captures/&lt;b&gt;secondary&lt;/b&gt;.pcap');
  });

  it('escapes an unknown reason and connection used as labels and keys', () => {
    const s = fixtureSummary();
    const evil = '<i>odd"reason</i>' as DivergenceReason;
    s.divergences[0] = {
      ...s.divergences[0],
      reason: evil,
      connection: { ...s.divergences[0].connection, src: '<u>x</u>' },
    };
    s.divergencesByReason = { ...s.divergencesByReason, [evil]: 1 };
    s.connections[0] = { ...s.connections[0], connection: '<u>x</u>' };
    const html = renderReport(s);
    expect(html).not.toContain('<i>');
    expect(html).not.toContain('<u>');
    expect(html).toContain('&lt;i&gt;odd&quot;reason&lt;/i&gt;');
  });

  it('gives the same bytes for the same summary', () => {
    expect(renderReport(fixtureSummary())).toBe(renderReport(fixtureSummary()));
  });

  it('lists the first N divergences and says how many were omitted', () => {
    const s = fixtureSummary();
    const html = renderReport(s, { maxDivergences: 5 });
    const table = html.slice(html.indexOf('<h2>Divergences</h2>'), html.indexOf('<h2>Checkpoints</h2>'));
    // The header, then one row per divergence (each with a window also has a row of bytes under it).
    expect(table.match(/<tr(?: class="has-sub")?>/g)).toHaveLength(1 + 5);
    const windows = s.divergences.slice(0, 5).filter((d) => d.window !== null).length;
    expect(table.match(/<tr class="sub">/g) ?? []).toHaveLength(windows);
    expect(table).toContain(
      `Showing the first 5 of ${s.divergences.length} divergences; ${s.divergences.length - 5} omitted`,
    );
    const all = renderReport(s);
    expect(all).not.toContain('omitted');
  });

  it('plots the top N connections by divergences and counts the rest', () => {
    const html = renderReport(fixtureSummary(), { topConnections: 2 });
    expect(titlesIn(html, 'plot-connections').slice(1)).toEqual([
      expect.stringMatching(/^tcp 10\.0\.0\.1:80 &gt; 10\.0\.0\.2:40000: 18 divergences/),
      expect.stringMatching(/^tcp 10\.0\.0\.1:80 &gt; 10\.0\.0\.2:40001: 9 divergences/),
    ]);
    expect(html).toContain('2 more diverging connections not shown (10 divergences)');
    expect(html).toContain('4 of 6 connections diverged');
  });

  it('says whether the frames balance', () => {
    expect(renderReport(fixtureSummary())).toContain('Every frame accounted for');
    const s = fixtureSummary();
    s.frames.released -= 1;
    expect(renderReport(s)).toContain('Frames do not balance: read 4\u2009820, accounted 4\u2009819');
  });

  it('shows read errors in an alert, and none when there are none', () => {
    expect(renderReport(fixtureSummary())).not.toContain('role="alert"');
    const html = renderReport(quietSummary());
    expect(html).toContain('role="alert"');
    expect(html).toContain('record-beyond-file');
    expect(html).toContain('42 frames read before it');
  });

  it('stays bounded for a long replay: 200k divergences, 50k checkpoints, 20k connections', () => {
    const s = fixtureSummary();
    const d = s.divergences[0];
    const c = s.checkpoints.list[0];
    s.divergences = Array.from({ length: 200_000 }, (_, i) => ({ ...d, time: i * 0.06 }));
    s.checkpoints.list = Array.from({ length: 50_000 }, (_, i) => ({ ...c, index: i + 1, startedAt: i * 0.24 }));
    s.connections = Array.from({ length: 20_000 }, (_, i) => ({
      ...s.connections[0],
      connection: `tcp 10.0.${i >> 8}.${i & 255}:80 > 10.1.0.1:4000`,
      divergences: i % 97,
    }));
    const html = renderReport(s);
    expect(html.length).toBeLessThan(1_000_000);
    expect(html).toContain('Showing the first 200 of 200\u2009000 divergences');
    expect(html).toContain('Showing the first 100 of 50\u2009000 checkpoints');
  });

  it('draws the empty state for a replay with nothing to plot', () => {
    const html = renderReport(quietSummary());
    expect(html.match(/class="plot empty"/g)).toHaveLength(4);
    expect(html).toContain('no divergences and no checkpoints');
  });
});

describe('timelineChart', () => {
  it('bins divergences up and checkpoints down, per reason, with counts in tooltips', () => {
    const svg = timelineChart(
      't',
      'label',
      1000,
      [
        { time: 0, reason: 'payload' },
        { time: 10, reason: 'payload' },
        { time: 15, reason: 'ack' },
        { time: 999, reason: 'payload' },
      ],
      [{ time: 12, reason: 'timer' }],
    );
    // 1000 ms / 60 rounds up to 20 ms bins: 0-20 holds three divergences and the checkpoint.
    const tips = [...svg.matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1]).slice(1);
    expect(tips).toEqual([
      '0 ms – 20 ms: 2 divergences (payload)',
      '0 ms – 20 ms: 1 divergence (ack)',
      '980 ms – 1 s: 1 divergence (payload)',
      '0 ms – 20 ms: 1 checkpoint (timer)',
    ]);
    expect(svg).toContain('data-marks="4"');
  });

  it('puts events after endMs in the last bin instead of losing them', () => {
    const svg = timelineChart('t', 'label', 100, [{ time: 5000, reason: 'timeout' }], []);
    expect(svg).toContain('data-marks="1"');
  });
});

describe('report formatting', () => {
  it('formats durations in the unit that reads best', () => {
    expect([0, 0.42, 1.234, 18.5, 999, 1500, 60_000, 250_000].map(fmtMs)).toEqual([
      '0 ms',
      '420 µs',
      '1.23 ms',
      '18.5 ms',
      '999 ms',
      '1.5 s',
      '60 s',
      '4 min 10 s',
    ]);
    expect(fmtMs(null)).toBe('–');
  });

  it('groups thousands without the locale', () => {
    expect([0, 999, 1000, 1234567, -4096].map(fmtInt)).toEqual([
      '0',
      '999',
      '1\u2009000',
      '1\u2009234\u2009567',
      '-4\u2009096',
    ]);
  });

  it('picks round steps and covering ticks', () => {
    expect([0.3, 1, 1.1, 3, 7, 16.7, 450].map(niceStep)).toEqual([0.5, 1, 2, 5, 10, 20, 500]);
    expect(niceTicks(9, 4).ticks).toEqual([0, 5, 10]);
    expect(niceTicks(12, 4).ticks).toEqual([0, 5, 10, 15]);
    // Counts get whole ticks: a single divergence must not label its axis "0, 0.5, 1".
    expect(niceTicks(1, 4, true).ticks).toEqual([0, 1]);
    expect(niceTicks(1, 4).ticks).toEqual([0, 0.5, 1]);
  });

  it('gives every reason a colour, stable for unknown ones', () => {
    expect(reasonColour('payload')).toBe('#D55E00');
    expect(reasonColour('something-new')).toMatch(/^#[0-9A-F]{6}$/);
    expect(reasonColour('something-new')).toBe(reasonColour('something-new'));
  });
});

describe('hexWindow', () => {
  it('dumps a window 16 bytes a line with its frame offsets, marking the differing byte or where a side ended', () => {
    const html = hexWindow({
      primary: { offset: 0x20, at: 0x30, hex: '41'.repeat(16) },
      secondary: { offset: 0x20, at: 0x30, hex: '41'.repeat(16) + '3c' },
    });
    const lines = html.replace(/^<pre class="hex">|<\/pre>$/g, '').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toContain('<span class="off">0x0020</span>  41 41');
    // The primary ended where the secondary has one more byte: an end mark on a line of its own.
    expect(lines[1]).toContain('<span class="off">0x0030</span>  <mark title="the frame ends here">--</mark>');
    expect(lines[3]).toContain('<mark>3c</mark>');
    expect(lines[3]).toContain('<mark class="ch">&lt;</mark>');
    expect(hexWindow(null)).toBe('');
  });
});
