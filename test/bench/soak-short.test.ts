import { expect, it } from 'vitest';
import { runSoak } from '../../bench/soak/run.js';
import { inlineLabPrerequisites } from '../support/inline-lab-suite.js';
import { describeWith } from '../support/prerequisites.js';

/** `npm run soak` in small: 15 s of load through the inline proxy with timer checkpoints and two agent kills. */
describeWith(inlineLabPrerequisites(), 'soak (short)', () => {
  it('15 s under load and faults: no crash, no hang, every frame accounted for, the client bytes verified', async () => {
    const result = await runSoak({ seconds: 15, faultEverySeconds: 6, subnet: 84 });
    if (result.problems.length > 0) process.stderr.write(`soak problems: ${result.problems.join('; ')}\n`);
    expect(result.problems).toEqual([]);
    expect({ crashes: result.crashes, hangs: result.hangs, unaccounted: result.unaccounted }).toEqual({
      crashes: 0,
      hangs: 0,
      unaccounted: 0,
    });
    expect(result.bytes_mismatched).toBe(0);
    // The load ran and was checked: downloads and requests, through checkpoints and an agent kill.
    expect(result.bytes_verified).toBeGreaterThan(1 << 20);
    expect(result.downloads).toBeGreaterThan(0);
    expect(result.request_rounds).toBeGreaterThan(0);
    expect(result.frames).toBeGreaterThan(0);
    expect(result.checkpoints).toBeGreaterThan(0);
    expect(result.agent_kills).toBeGreaterThanOrEqual(1);
    expect(result.reprotections).toBe(result.agent_kills);
    expect(result.proxy_exit).toBe(0);
  }, 60_000);
});
