/**
 * Protection modes in a replay of generated captures (test/support/mode-workload.ts): UDP replies every
 * 5 ms over 16 flows, some differing between the VMs. Hybrid must leave compare mode within its window
 * when every reply diverges, come back once the comparison in the background calms, and never leave
 * compare mode on a deterministic workload.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultModeThresholds, type ModeSwitch, type ProtectionMode } from '../../compare/protection-mode.js';
import { parsePassthroughRules } from '../../compare/passthrough.js';
import type { ReplayOptions } from '../../src/replay/options.js';
import { renderReport } from '../../src/report/html.js';
import { replayFiles } from '../../src/replay/run.js';
import type { ReplaySummary } from '../../src/replay/summary.js';
import { buildModeWorkload, type ModeWorkload } from '../support/mode-workload.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-replay-modes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const thresholds = { ...defaultModeThresholds };
const CHECKPOINT_MS = 20;

async function run(
  name: string,
  differs: ModeWorkload['differs'],
  mode: ProtectionMode | null,
  extra: Partial<ReplayOptions> = {},
): Promise<{ summary: ReplaySummary; switches: ModeSwitch[] }> {
  const w = buildModeWorkload({ durationMs: 10_000, intervalMs: 5, flows: 16, differs });
  const primary = join(dir, `${name}-p.pcap`);
  const secondary = join(dir, `${name}-s.pcap`);
  writeFileSync(primary, w.primary);
  writeFileSync(secondary, w.secondary);
  const switches: ModeSwitch[] = [];
  const summary = await replayFiles(
    { primary, secondary },
    { checkpointDurationMs: CHECKPOINT_MS, ...(mode === null ? {} : { modes: { mode, thresholds } }), ...extra },
    { onModeSwitch: (s) => switches.push(s) },
  );
  return { summary, switches };
}

const burst = (_i: number, at: number): boolean => at >= 1000 && at < 5000;

describe('replay --mode', () => {
  it('hybrid: a workload diverging on every reply switches to periodic within the window, and back once calm', async () => {
    const { summary, switches } = await run('burst', burst, 'hybrid');
    expect(switches.map((s) => `${s.from}>${s.to}`)).toEqual(['compare>periodic', 'periodic>compare']);
    // Every reply diverging crowds the checkpoints: too many in the window, or too much of it paused.
    expect(['divergence-rate', 'paused-share']).toContain(switches[0].reason);
    expect(switches[1].reason).toBe('calm');
    // Either bound is passed within one window of the first divergence.
    expect(switches[0].at).toBeGreaterThan(1000);
    expect(switches[0].at).toBeLessThanOrEqual(1000 + thresholds.windowMs);
    // Back after Q of calm, judged at a periodic checkpoint's completion.
    expect(switches[1].at).toBeGreaterThanOrEqual(5000);
    expect(switches[1].at).toBeLessThanOrEqual(5000 + thresholds.calmMs + thresholds.periodMs + CHECKPOINT_MS);
    const modes = summary.modes!;
    expect(modes.switches).toEqual(switches);
    expect(modes.switchesByKey).toEqual({ [`compare>periodic:${switches[0].reason}`]: 1, 'periodic>compare:calm': 1 });
    expect(modes.backgroundDivergences).toBeGreaterThan(0);
    // The HTML report lists both switches with their reasons.
    const html = renderReport(summary);
    expect(html).toContain('Protection mode: hybrid');
    expect(html).toContain(`<td>${switches[0].reason}</td>`);
    expect(html).toContain('<td>calm</td>');
    // Every frame has a fate and none is left held by the mode.
    expect(summary.frames.released).toBe(summary.frames.primary);
    expect(summary.frames.heldAtEnd).toBe(0);
  });

  it('hybrid: a deterministic workload never leaves compare mode and replays exactly as compare does', async () => {
    const hybrid = await run('same-h', () => false, 'hybrid');
    const compare = await run('same-c', () => false, null);
    expect(hybrid.switches).toEqual([]);
    expect(renderReport(compare.summary)).not.toContain('Protection mode');
    expect(hybrid.summary.modes!.timeInMs.periodic).toBe(0);
    const { modes, ...rest } = hybrid.summary;
    expect(modes).toBeDefined();
    expect({ ...rest, inputs: null }).toEqual({ ...compare.summary, inputs: null, passthrough: rest.passthrough });
  });

  it('periodic: every frame waits for the next checkpoint, divergences ask for none but are still counted', async () => {
    const { summary, switches } = await run('periodic', burst, 'periodic');
    expect(switches).toEqual([]);
    expect(summary.checkpoints.byReason).toEqual({ timer: summary.checkpoints.total });
    // One checkpoint per period over the 10 s capture (and one more to release what the last frames left).
    expect(summary.checkpoints.total).toBeGreaterThanOrEqual(100);
    expect(summary.checkpoints.total).toBeLessThanOrEqual(102);
    expect(summary.divergences.length).toBeGreaterThan(0);
    const latency = summary.modes!.releaseLatencyMs;
    expect(latency.count).toBe(summary.frames.primary);
    expect(latency.max).toBeLessThanOrEqual(thresholds.periodMs + CHECKPOINT_MS);
    expect(latency.p50).toBeGreaterThan(CHECKPOINT_MS);
    expect(summary.modes!.pausedShare).toBeCloseTo(CHECKPOINT_MS / thresholds.periodMs, 2);
  });

  it('periodic: a pass-through flow is released at once while every other frame waits for a checkpoint', async () => {
    const rules = parsePassthroughRules(['udp:20000']);
    if (!rules.ok) throw new Error('bad rule');
    const held = await run('periodic-held', burst, 'periodic');
    const { summary } = await run('periodic-pass', burst, 'periodic', { passthrough: rules.value });
    // One flow of 16: 2000 replies over 10 s, 125 on udp port 20000.
    expect(summary.modes!.passthroughReleasedWhilePeriodic).toBe(125);
    expect(summary.passthrough!.releasedPrimary).toBe(125);
    expect(held.summary.modes!.passthroughReleasedWhilePeriodic).toBe(0);
    // The other 1875 frames still wait: p50 unchanged, and the 125 released at once add zeros below it.
    expect(summary.modes!.releaseLatencyMs.count).toBe(2000);
    expect(summary.frames.released).toBe(2000);
    expect(summary.modes!.releaseLatencyMs.p50).toBeGreaterThan(CHECKPOINT_MS);
  });

  it('compare: divergence checkpoints release diverging frames within a checkpoint or two', async () => {
    const { summary } = await run('compare', burst, 'compare');
    expect(summary.checkpoints.total).toBeGreaterThan(100);
    expect(summary.modes!.releaseLatencyMs.max).toBeLessThanOrEqual(2 * CHECKPOINT_MS);
  });
});
