import { expect, it } from 'vitest';
import { inlineLabPerTest, inlineLabPrerequisites } from '../support/inline-lab-suite.js';
import { describeWith } from '../support/prerequisites.js';

/**
 * Pass-through rules in the inline proxy, end to end: a secondary whose every reply differs, a rule for the
 * service's port, the client's byte stream, and the rule removed at run time through the control endpoint.
 */

interface Reply {
  localPort: number;
  reply: string;
}
interface Stats {
  passthrough: { rule: string; frames: number }[];
  inline: { engine: { passedThroughRulePrimary: number; passedThroughRuleSecondary: number } };
}

describeWith(inlineLabPrerequisites(), 'inline proxy pass-through rules (namespaces)', () => {
  const labs = inlineLabPerTest(86);

  it('a rule for the service releases the primary’s replies uncompared; removed at run time, comparison resumes', async () => {
    const l = await labs.start({ nondeterministic: true, checkpointTimerMs: 60_000, passthrough: ['tcp:7000'] });
    const connections = Array.from({ length: 3 }, () => ['INCR hits', 'GET hits']);
    const passed = await l.clientResult<{ replies: Reply[] }>(
      l.client({ kind: 'requests', connections }, 'client-passed'),
      30_000,
    );
    // The primary's replies, intact and in order (the secondary's carry a token and were dropped).
    expect(passed.replies.map((r) => r.reply)).toEqual(['1', '1', '2', '2', '3', '3']);
    expect(l.proxyEvents('divergence')).toEqual([]);
    expect(l.proxyEvents('checkpoint').filter((e) => e.seeding !== true && e.reason !== 'timer')).toEqual([]);
    const stats = JSON.parse(await l.stats('/stats')) as Stats;
    expect(stats.passthrough).toHaveLength(1);
    expect(stats.passthrough[0].rule).toBe('tcp:7000');
    expect(stats.passthrough[0].frames).toBeGreaterThan(0);
    expect(stats.inline.engine.passedThroughRulePrimary).toBeGreaterThan(0);
    expect(stats.inline.engine.passedThroughRuleSecondary).toBeGreaterThan(0);

    // The rule removed through the control endpoint (loopback in the proxy namespace): now every reply diverges.
    const started = await l.proxy.waitFor((e) => e.event === 'started', 1000, 'the proxy to start');
    const url = `http://${String(started.metrics)}/passthrough`;
    const put = await labs.topo.proxy.exec('curl', '-sf', '--max-time', '5', '-X', 'PUT', '--data', '[]', url);
    expect(JSON.parse(put)).toEqual({ rules: [] });
    const compared = await l.clientResult<{ replies: Reply[] }>(
      l.client({ kind: 'requests', connections: [['INCR hits']] }, 'client-compared'),
      30_000,
    );
    expect(compared.replies.map((r) => r.reply)).toEqual(['4']);
    const divergence = await l.proxy.waitFor((e) => e.event === 'divergence', 10_000, 'a divergence');
    expect((divergence.connection as { dstPort: number }).dstPort).toBe(compared.replies[0].localPort);
  }, 90_000);
});
