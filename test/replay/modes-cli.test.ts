/**
 * `colo-proxy replay --mode` from the TypeScript sources (npm run dev): the mode and its thresholds from
 * flags over a YAML file, the switches in the JSON summary, the NDJSON event log and the text summary, and
 * a bad threshold refused naming its field.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReplaySummary } from '../../src/replay/summary.js';
import { buildModeWorkload } from '../support/mode-workload.js';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'colo-replay-modes-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const w = buildModeWorkload({
  durationMs: 8000,
  intervalMs: 5,
  flows: 16,
  differs: (_i, at) => at >= 1000 && at < 3000,
});
const primary = join(dir, 'p.pcap');
const secondary = join(dir, 's.pcap');
writeFileSync(primary, w.primary);
writeFileSync(secondary, w.secondary);

function replay(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const base = [
    '--import',
    'tsx',
    join(root, 'src/cli/main.ts'),
    'replay',
    '--primary',
    primary,
    '--secondary',
    secondary,
  ];
  return exec('node', [...base, ...args], { cwd: root });
}

describe('colo-proxy replay --protection-mode', { timeout: 60_000 }, () => {
  it('takes thresholds from YAML and flags, and reports each switch in JSON, events and text', async () => {
    const config = join(dir, 'modes.yaml');
    writeFileSync(config, 'protection:\n  mode: periodic\n  calmMs: 1500\n  maxPausedShare: 0.9\n');
    const json = join(dir, 's.json');
    const events = join(dir, 'e.ndjson');
    // The flag wins over the file's mode; the file's calmMs and maxPausedShare stay.
    const { stdout } = await replay([
      '--mode-config',
      config,
      '--protection-mode',
      'hybrid',
      '--json',
      json,
      '--events',
      events,
    ]);
    const summary = JSON.parse(readFileSync(json, 'utf8')) as ReplaySummary;
    const modes = summary.modes!;
    expect(modes.mode).toBe('hybrid');
    expect(modes.thresholds).toMatchObject({ calmMs: 1500, maxPausedShare: 0.9, periodMs: 100 });
    expect(modes.switchesByKey).toEqual({ 'compare>periodic:divergence-rate': 1, 'periodic>compare:calm': 1 });
    const lines = readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const switches = lines.filter((l) => l.type === 'mode-switch');
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['compare', 'periodic', 'divergence-rate'],
      ['periodic', 'compare', 'calm'],
    ]);
    // Event times are capture (epoch) times, like every other event's.
    expect(switches[0].time).toBe((summary.capture.firstFrameEpochMs ?? 0) + modes.switches[0].at);
    expect(stdout).toContain('mode hybrid: 2 switches (compare>periodic:divergence-rate 1, periodic>compare:calm 1)');
  });

  it('refuses a bad threshold, naming the field, what was expected and what came', async () => {
    const failure = await replay(['--protection-mode', 'hybrid', '--protection-max-paused-share', '1.5']).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain('protection.maxPausedShare');
    expect(failure?.stderr).toContain('a share of time paused, above 0 and at most 1');
    const mode = await replay(['--protection-mode', 'remus']).then(
      () => null,
      (err: { stderr: string }) => err,
    );
    expect(mode?.stderr).toContain('compare, periodic or hybrid');
  });

  it('still takes the earlier spellings (--mode, --period, --hybrid-*), each with a line naming its new flag', async () => {
    const json = join(dir, 'former.json');
    const { stderr } = await replay(['--mode', 'periodic', '--period', '250', '--hybrid-calm', '1500', '--json', json]);
    const modes = (JSON.parse(readFileSync(json, 'utf8')) as ReplaySummary).modes!;
    expect(modes.mode).toBe('periodic');
    expect(modes.thresholds).toMatchObject({ periodMs: 250, calmMs: 1500 });
    expect(stderr).toContain('--mode is deprecated: use --protection-mode');
    expect(stderr).toContain('--period is deprecated: use --protection-period-ms');
    expect(stderr).toContain('--hybrid-calm is deprecated: use --protection-calm-ms');
  });
});
