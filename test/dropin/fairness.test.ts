import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Side } from '../../compare/types.js';
import {
  HOLD_LEAD_FRAMES,
  IDLE_FORGIVE_MS,
  InputFairness,
  RELEASE_LEAD_FRAMES,
  type HoldableInput,
} from '../../proxy/fairness.js';

class FakeInput implements HoldableInput {
  held = false;
  holds = 0;
  hold(): void {
    this.held = true;
    this.holds++;
  }
  unhold(): void {
    this.held = false;
  }
}

function setup(): {
  fairness: InputFairness;
  inputs: Record<Side, FakeInput>;
  counters: { fairnessHolds: number; fairnessForgiven: number };
} {
  const counters = { fairnessHolds: 0, fairnessForgiven: 0 };
  const fairness = new InputFairness(counters);
  const inputs = { primary: new FakeInput(), secondary: new FakeInput() };
  fairness.attach(inputs);
  return { fairness, inputs, counters };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('InputFairness: which input is read next', () => {
  it('inputs in step are never held, however much they deliver', () => {
    const { fairness, inputs, counters } = setup();
    for (let i = 0; i < 1000; i++) {
      fairness.delivered('primary', 200);
      fairness.delivered('secondary', 200);
    }
    expect(inputs.primary.holds + inputs.secondary.holds).toBe(0);
    expect(counters.fairnessHolds).toBe(0);
    fairness.stop();
  });

  it('holds the input that runs HOLD_LEAD_FRAMES ahead until the other is within RELEASE_LEAD_FRAMES', () => {
    const { fairness, inputs, counters } = setup();
    fairness.delivered('secondary', HOLD_LEAD_FRAMES);
    expect(fairness.held).toBeNull();
    fairness.delivered('secondary', 1);
    expect(fairness.held).toBe('secondary');
    expect(inputs.secondary.held).toBe(true);
    // Frames already read before the hold took effect do not end it.
    fairness.delivered('secondary', 50);
    expect(inputs.secondary.held).toBe(true);
    // The primary catches up to one frame short of the release point: still held.
    fairness.delivered('primary', HOLD_LEAD_FRAMES + 51 - RELEASE_LEAD_FRAMES - 1);
    expect(inputs.secondary.held).toBe(true);
    fairness.delivered('primary', 1);
    expect(inputs.secondary.held).toBe(false);
    expect(fairness.held).toBeNull();
    expect(counters).toEqual({ fairnessHolds: 1, fairnessForgiven: 0 });
    fairness.stop();
  });

  it('a held input is let go when the other stays silent for IDLE_FORGIVE_MS, and its lead is forgiven', () => {
    const { fairness, inputs, counters } = setup();
    fairness.delivered('primary', HOLD_LEAD_FRAMES + 1);
    expect(inputs.primary.held).toBe(true);
    vi.advanceTimersByTime(IDLE_FORGIVE_MS - 1);
    expect(inputs.primary.held).toBe(true);
    vi.advanceTimersByTime(1);
    expect(inputs.primary.held).toBe(false);
    expect(counters.fairnessForgiven).toBe(1);
    // Forgiven: the primary may run HOLD_LEAD_FRAMES ahead again before the next hold.
    fairness.delivered('primary', HOLD_LEAD_FRAMES);
    expect(inputs.primary.held).toBe(false);
    fairness.stop();
  });

  it('a held input whose counterpart keeps delivering is not forgiven: it waits for the catch-up', () => {
    const { fairness, inputs, counters } = setup();
    fairness.delivered('primary', 1000);
    for (let i = 0; i < 5; i++) {
      fairness.delivered('secondary', 10);
      vi.advanceTimersByTime(IDLE_FORGIVE_MS);
    }
    expect(inputs.primary.held).toBe(true);
    expect(counters.fairnessForgiven).toBe(0);
    fairness.stop();
  });

  it('before attach() nothing is held', () => {
    const counters = { fairnessHolds: 0, fairnessForgiven: 0 };
    const fairness = new InputFairness(counters);
    fairness.delivered('primary', 10 * HOLD_LEAD_FRAMES);
    expect(fairness.held).toBeNull();
    expect(counters.fairnessHolds).toBe(0);
  });
});
