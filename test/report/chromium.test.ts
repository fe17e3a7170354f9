import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderReport } from '../../src/report/html.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';
import { Chromium, chromiumFlags, type CdpEvent } from './cdp.js';
import { fixtureSummary, frameStartWindow, hostileDetail, quietSummary } from './fixture.js';
import { countColour, decodePng, luminanceVariance } from './png.js';

const run = promisify(execFile);
const width = 1280;
const height = 2000;
/** Chromium starts slowly on a loaded two-core machine; these bound the wait, they are not sleeps. */
const browserTestTimeout = 90_000;

/** Console errors, uncaught exceptions and error log entries (failed loads, CSP, ...) in a page. */
function pageErrors(events: CdpEvent[], sessionId: string): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.sessionId !== sessionId) continue;
    const p = e.params as Record<string, never>;
    if (e.method === 'Runtime.exceptionThrown') out.push(`exception: ${JSON.stringify(p.exceptionDetails)}`);
    if (e.method === 'Runtime.consoleAPICalled' && ['error', 'assert', 'warning'].includes(p.type)) {
      out.push(`console.${p.type}: ${JSON.stringify(p.args)}`);
    }
    if (e.method === 'Log.entryAdded' && ['error', 'warning'].includes((p.entry as { level: string }).level)) {
      out.push(`log: ${JSON.stringify(p.entry)}`);
    }
  }
  return out;
}

interface PlotInfo {
  id: string;
  marks: number;
  declared: number;
  width: number;
  height: number;
}

describeWith([hasCommand('chromium', 'chromium')], 'the HTML report in headless Chromium', () => {
  let dir: string;
  let chrome: Chromium;
  let reportUrl: string;
  let quietUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'colo-report-'));
    const report = join(dir, 'report.html');
    const quiet = join(dir, 'quiet.html');
    await writeFile(report, renderReport(fixtureSummary()));
    await writeFile(quiet, renderReport(quietSummary()));
    reportUrl = pathToFileURL(report).href;
    quietUrl = pathToFileURL(quiet).href;
    chrome = await Chromium.launch();
  });

  afterAll(async () => {
    await chrome?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function open(url: string): Promise<string> {
    const session = await chrome.newPage(width, 900);
    await chrome.send('Page.navigate', { url }, session);
    await chrome.waitFor((e) => e.sessionId === session && e.method === 'Page.loadEventFired', 20_000, 'page load');
    return session;
  }

  async function evaluate<T>(session: string, expression: string): Promise<T> {
    const reply = (await chrome.send('Runtime.evaluate', { expression, returnByValue: true }, session)) as {
      result: { value: T };
      exceptionDetails?: unknown;
    };
    if (reply.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(reply.exceptionDetails)}`);
    return reply.result.value;
  }

  const plotsExpression = `[...document.querySelectorAll('svg.plot')].map((s) => {
    const r = s.getBoundingClientRect();
    return { id: s.id, marks: s.querySelectorAll('.mark').length, declared: Number(s.dataset.marks),
             width: r.width, height: r.height };
  })`;

  it(
    'loads with no console error, no exception and no resource fetched',
    async () => {
      const session = await open(reportUrl);
      expect(pageErrors(chrome.events, session)).toEqual([]);
      const loaded = await evaluate<{ resources: number; external: number; scripts: number; title: string }>(
        session,
        `({ resources: performance.getEntriesByType('resource').length,
          external: document.querySelectorAll('[src], link[href], iframe, object, embed').length,
          scripts: document.scripts.length, title: document.title })`,
      );
      expect(loaded).toEqual({
        resources: 0,
        external: 0,
        scripts: 0,
        title: expect.stringContaining('colo-proxy replay'),
      });
    },
    browserTestTimeout,
  );

  it(
    'error check: a page that logs an error, throws and fetches a missing file fails it',
    async () => {
      const bad = join(dir, 'bad.html');
      await writeFile(
        bad,
        '<!doctype html><title>bad</title><img src="missing.png"><script>console.error("boom"); null.x;</script>',
      );
      const session = await open(pathToFileURL(bad).href);
      const errors = pageErrors(chrome.events, session);
      expect(errors.some((e) => e.startsWith('console.error') && e.includes('boom'))).toBe(true);
      expect(errors.some((e) => e.startsWith('exception'))).toBe(true);
      await chrome.waitFor(
        (e) => e.sessionId === session && e.method === 'Log.entryAdded',
        10_000,
        'the failed load to be logged',
      );
      expect(pageErrors(chrome.events, session).some((e) => e.startsWith('log:') && e.includes('missing.png'))).toBe(
        true,
      );
    },
    browserTestTimeout,
  );

  it(
    'shows markup from the data as text and runs none of it',
    async () => {
      const session = await open(reportUrl);
      const seen = await evaluate<{ pwned: unknown; text: boolean; svgs: number }>(
        session,
        `({ pwned: window.__pwned ?? null, text: document.body.innerText.includes(${JSON.stringify(hostileDetail)}),
          svgs: document.querySelectorAll('svg:not(.plot)').length })`,
      );
      expect(seen).toEqual({ pwned: null, text: true, svgs: 0 });
    },
    browserTestTimeout,
  );

  it(
    'draws every plot with a visible size and its marks',
    async () => {
      const session = await open(reportUrl);
      const plots = await evaluate<PlotInfo[]>(session, plotsExpression);
      expect(plots.map((p) => p.id)).toEqual([
        'plot-timeline',
        'plot-divergence-reasons',
        'plot-checkpoint-reasons',
        'plot-connections',
      ]);
      for (const p of plots) {
        expect(p.marks, p.id).toBeGreaterThan(0);
        expect(p.marks, p.id).toBe(p.declared);
        expect(p.width, p.id).toBeGreaterThan(300);
        expect(p.height, p.id).toBeGreaterThan(80);
      }
      const byId = Object.fromEntries(plots.map((p) => [p.id, p]));
      const summary = fixtureSummary();
      expect(byId['plot-divergence-reasons'].marks).toBe(Object.keys(summary.divergencesByReason).length);
      expect(byId['plot-checkpoint-reasons'].marks).toBe(Object.keys(summary.checkpoints.byReason).length);
      expect(byId['plot-connections'].marks).toBe(summary.connections.filter((c) => c.divergences > 0).length);
    },
    browserTestTimeout,
  );

  it(
    'shows the bytes around each difference, the differing byte marked on both sides, frame-start windows included',
    async () => {
      const session = await open(reportUrl);
      const dumps = await evaluate<{ text: string; marks: string[]; width: number; height: number }[]>(
        session,
        `[...document.querySelectorAll('pre.hex')].map((pre) => {
          const box = pre.getBoundingClientRect();
          return { text: pre.innerText, marks: [...pre.querySelectorAll('mark:not(.ch)')].map((m) => m.innerText),
            width: box.width, height: box.height };
        })`,
      );
      const summary = fixtureSummary();
      const withWindow = summary.divergences.filter((d) => d.window !== null);
      expect(dumps).toHaveLength(withWindow.length);
      for (const [i, dump] of dumps.entries()) {
        const { primary, secondary } = withWindow[i].window!;
        const byteAt = (w: typeof primary) => w!.hex.slice((w!.at - w!.offset) * 2, (w!.at - w!.offset) * 2 + 2);
        expect(dump.marks).toEqual([byteAt(primary), byteAt(secondary)]);
        expect(dump.width).toBeGreaterThan(200);
        expect(dump.height).toBeGreaterThan(20);
      }
      // The window that starts at the frame's first byte: offset 0x0000, the mark on the first byte.
      const first = dumps[withWindow.findIndex((d) => d.window === frameStartWindow)];
      expect(first.text.split('\n')[0]).toMatch(/^P 0x0000 +02 00 00/);
      expect(first.marks).toEqual(['02', '12']);
      // A mid-frame window: 16 bytes before the mark, on lines of 16 from the window's offset (70 = 0x46).
      const mid = dumps.find((d) => d !== first)!;
      expect(mid.text).toMatch(/^P 0x0046 +48 54 54 50/);
      expect(mid.text).toMatch(/\n {2}0x0056 +\S\S 0a 44 61 74 65/);
    },
    browserTestTimeout,
  );

  it(
    'shows an input error prominently and empty plots as such',
    async () => {
      const session = await open(quietUrl);
      expect(pageErrors(chrome.events, session)).toEqual([]);
      const seen = await evaluate<{ alert: string; plots: PlotInfo[] }>(
        session,
        `({ alert: document.querySelector('[role=alert]')?.innerText ?? '', plots: ${plotsExpression} })`,
      );
      expect(seen.alert).toContain('captures/<b>secondary</b>.pcap');
      expect(seen.alert).toContain('4\u2009096');
      expect(seen.plots).toHaveLength(4);
      for (const p of seen.plots) expect(p.marks, p.id).toBe(0);
    },
    browserTestTimeout,
  );

  it(
    'screenshot: a PNG of the window size, not blank, with the plots painted',
    async () => {
      const shot = join(dir, 'report.png');
      await run(
        '/usr/bin/chromium',
        [
          ...chromiumFlags,
          `--user-data-dir=${join(dir, 'profile-shot')}`,
          `--window-size=${width},${height}`,
          `--screenshot=${shot}`,
          reportUrl,
        ],
        { timeout: 60_000 },
      );
      const png = decodePng(await readFile(shot));
      expect([png.width, png.height]).toEqual([width, height]);
      expect(luminanceVariance(png)).toBeGreaterThan(200);
      // Solid fills of the payload (#D55E00) and connection (#0072B2) bars: the plots really painted.
      expect(countColour(png, '#D55E00')).toBeGreaterThan(2000);
      expect(countColour(png, '#0072B2')).toBeGreaterThan(2000);
      if (process.env.COLO_REPORT_SCREENSHOT) await copyFile(shot, process.env.COLO_REPORT_SCREENSHOT);
    },
    browserTestTimeout,
  );

  it(
    'screenshot check: a blank page fails it',
    async () => {
      const session = await chrome.newPage(width, 600);
      const { data } = (await chrome.send('Page.captureScreenshot', { format: 'png' }, session)) as { data: string };
      const png = decodePng(Buffer.from(data, 'base64'));
      expect(png.width).toBe(width);
      expect(luminanceVariance(png)).toBeLessThan(1);
      expect(countColour(png, '#D55E00')).toBe(0);
    },
    browserTestTimeout,
  );
});
