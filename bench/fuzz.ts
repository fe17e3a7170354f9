/**
 * `npm run fuzz`: the hostile-input campaign (bench/fuzz/campaign.ts). Prints one JSON line at the end.
 * Knobs (environment): FUZZ_FRAMES (1,000,000 frames through framing + engine), FUZZ_CAPTURES (200 mutated
 * capture pairs through replay), FUZZ_AGENT (300 garbage inputs to the agent), FUZZ_SEED (1),
 * FUZZ_CAPTURE_BOUND_MS (5000: a replay running longer is a hang).
 * Exit status 1 when anything crashed, hung or went unaccounted.
 */
import { runFuzz } from './fuzz/campaign.js';

function knob(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative integer, got ${text}`);
  return value;
}

const result = await runFuzz({
  frames: knob('FUZZ_FRAMES', 1_000_000),
  captures: knob('FUZZ_CAPTURES', 200),
  agentInputs: knob('FUZZ_AGENT', 300),
  seed: knob('FUZZ_SEED', 1),
  captureBoundMs: knob('FUZZ_CAPTURE_BOUND_MS', 5000),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exitCode = result.crashes + result.hangs + result.unaccounted > 0 ? 1 : 0;
