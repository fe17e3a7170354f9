import { describe, expect, it } from 'vitest';
import { parsePassthroughRules, type PassthroughRule } from '../../compare/passthrough.js';
import { Harness, tcp, udp } from './support.js';

function rules(...texts: string[]): PassthroughRule[] {
  const parsed = parsePassthroughRules(texts);
  if (!parsed.ok) throw new Error(parsed.error.expected);
  return parsed.value;
}

describe('pass-through rules in the engine', () => {
  it('releases a matching primary frame at once, drops the secondary copy, and tracks no connection', () => {
    const h = new Harness({ passthrough: rules('udp:5353') });
    const primary = udp('primary says one thing');
    expect(h.primary(primary).released.map((p) => p.frame)).toEqual([primary]);
    const out = h.secondary(udp('the secondary another'));
    expect(out.dropped).toHaveLength(1);
    expect(out.divergences).toEqual([]);
    expect(h.engine.stats()).toMatchObject({
      connections: 0,
      passedThroughRulePrimary: 1,
      passedThroughRuleSecondary: 1,
      uncomparedPrimary: 0,
      heldPrimaryPackets: 0,
    });
    expect(h.engine.passthroughRules()).toEqual([{ rule: 'udp:5353', frames: 2 }]);
    expect(h.released[0].passedByRule).toBe(true);
    expect(h.dropped[0].passedByRule).toBe(true);
  });

  it('still compares every other flow', () => {
    const h = new Harness({ passthrough: rules('udp:5353') });
    h.primary(tcp(1, 'abc'));
    expect(h.released).toEqual([]);
    const out = h.secondary(tcp(1, 'abX'));
    expect(out.divergences[0]).toMatchObject({ reason: 'payload', protocol: 'tcp' });
    h.flush();
    expect(h.released[0].passedByRule).toBe(false);
    expect(h.engine.stats()).toMatchObject({ connections: 1, passedThroughRulePrimary: 0 });
  });

  it('takes new rules at run time from the next frame on', () => {
    const h = new Harness();
    h.primary(udp('held'));
    expect(h.released).toHaveLength(0);
    h.engine.setPassthrough(rules('10.0.0.0/8'));
    expect(h.primary(tcp(1, 'x')).released).toHaveLength(1);
    expect(h.engine.passthroughRules()).toEqual([{ rule: 'any,10.0.0.0/8', frames: 1 }]);
    h.engine.setPassthrough([]);
    expect(h.primary(tcp(2, 'y')).released).toHaveLength(0);
    expect(h.engine.passthroughRules()).toEqual([]);
  });
});
