import { readdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFuzz } from '../../bench/fuzz/campaign.js';
import { runCaptureCampaign } from '../../bench/fuzz/captures.js';
import { runFrameCampaign } from '../../bench/fuzz/frames.js';

/** `npm run fuzz` in small: the same campaign CI can afford. FUZZ_SEED picks another seed. */
const seed = Number(process.env.FUZZ_SEED ?? 1);
const examples = ['http', 'resegmented'].map((name) => new URL(`../../examples/${name}`, import.meta.url).pathname);

describe('fuzz campaign (short)', () => {
  it('20,000 mutated frames, 20 mutated captures and 30 agent inputs: no crash, no hang, every frame accounted for', async () => {
    const result = await runFuzz({ frames: 20_000, captures: 20, agentInputs: 30, seed });
    expect(result.failures).toEqual([]);
    expect({ crashes: result.crashes, hangs: result.hangs, unaccounted: result.unaccounted }).toEqual({
      crashes: 0,
      hangs: 0,
      unaccounted: 0,
    });
    const frames = result.frame_campaign;
    expect(frames.frames).toBeGreaterThanOrEqual(20_000);
    expect(frames.boundViolations).toBe(0);
    // The inputs were hostile enough to reach every fate: malformed frames, framing rejects, releases, drops.
    expect(frames.fates.malformed).toBeGreaterThan(0);
    expect(Object.keys(frames.fates.rejected).length).toBeGreaterThan(0);
    expect(frames.fates.released).toBeGreaterThan(0);
    expect(frames.fates.dropped).toBeGreaterThan(0);
    // Both option sets ran (the tight one passes the table's bound).
    expect(frames.engines).toBeGreaterThanOrEqual(2);
    expect(result.capture_campaign.replayed + result.capture_campaign.refused).toBe(20);
    expect(result.capture_campaign.replayed).toBeGreaterThan(0);
    expect(result.agent_inputs).toBe(30);
  }, 60_000);

  it('is deterministic: one seed gives the same frame report twice', () => {
    const a = runFrameCampaign({ frames: 4000, seed: seed + 7 });
    const b = runFrameCampaign({ frames: 4000, seed: seed + 7 });
    expect(a).toEqual(b);
    expect(runFrameCampaign({ frames: 4000, seed: seed + 8 }).fates).not.toEqual(a.fates);
  });

  it('counts a replay that outlives its bound as a hang and keeps its files', async () => {
    const report = await runCaptureCampaign({ captures: 2, seed, boundMs: 0, examples });
    expect(report.hangs).toBe(2);
    expect(report.failures.map((f) => f.kind)).toEqual(['hang', 'hang']);
    const kept = report.failures[0]!.files;
    expect(kept).toMatch(/colo-fuzz-captures-/);
    expect(readdirSync(kept).length).toBeGreaterThan(0);
    rmSync(dirname(kept), { recursive: true });
  }, 60_000);
});
