import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { LabOptions } from '../support/inline-lab.js';
import { inlineLabPerTest, inlineLabPrerequisites } from '../support/inline-lab-suite.js';
import { labCli, type Event } from '../support/lab-process.js';
import { describeWith } from '../support/prerequisites.js';

/**
 * Protection modes in the inline proxy, end to end (issue 16; docs/inline.md, "Protection modes"): hybrid
 * leaves comparison for periodic checkpoints while the secondary diverges on every reply and comes back once
 * it is calm; a deterministic workload never leaves compare; periodic mode holds every flow but a pass-through
 * one. In each, the client must read exactly the primary's replies, in order.
 */

interface Reply {
  localPort: number;
  reply: string;
  time: number;
}
interface SwitchFields {
  from: string;
  to: string;
  reason: string;
}
interface Stats {
  divergences: { total: number };
  checkpoints: { requests: { byReason: Record<string, number> } };
  passthrough: { rule: string; frames: number }[];
  inline: {
    protection: {
      mode: string;
      active: string;
      switches: number;
      lastSwitch: (SwitchFields & { divergences: number; pausedShare: number }) | null;
      timeInMs: { compare: number; periodic: number };
      backgroundDivergences: number;
    };
    counters: { modeSwitches: number; backgroundDivergences: number; passedByRuleWhileHeld: number };
  };
}

/**
 * Hybrid thresholds small enough for a test: four divergence checkpoints within a second go periodic, and a
 * second and a half in periodic without a single background divergence comes back. Calm at zero (not the
 * default's "fewer than M") so that a busy moment of the noisy phase cannot pass for calm.
 */
const hybrid = {
  mode: 'hybrid',
  periodMs: 100,
  windowMs: 1000,
  maxDivergenceCheckpoints: 3,
  calmMs: 1500,
  calmDivergences: 1,
};

/** `INCR key` on `count` connections of `perConnection` requests: the replies count 1, 2, 3, ... in order. */
function increments(
  key: string,
  count: number,
  perConnection: number,
): { connections: string[][]; expected: string[] } {
  const connections = Array.from({ length: count }, () => Array.from({ length: perConnection }, () => `INCR ${key}`));
  return { connections, expected: Array.from({ length: count * perConnection }, (_, i) => String(i + 1)) };
}

const switchOf = (e: Event): SwitchFields => ({ from: String(e.from), to: String(e.to), reason: String(e.reason) });
const dstPortOf = (e: Event): number => (e.connection as { dstPort: number }).dstPort;

/** colo_mode_switches_total's series, as `from>to:reason` -> value. */
function modeSwitchSeries(metrics: string): Record<string, number> {
  const series: Record<string, number> = {};
  for (const match of metrics.matchAll(/^colo_mode_switches_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    series[`${labels.from}>${labels.to}:${labels.reason}`] = Number(match[2]);
  }
  return series;
}

function countSwitches(switches: SwitchFields[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of switches)
    counts[`${s.from}>${s.to}:${s.reason}`] = (counts[`${s.from}>${s.to}:${s.reason}`] ?? 0) + 1;
  return counts;
}

describeWith(inlineLabPrerequisites(), 'inline proxy protection modes (namespaces)', () => {
  const labs = inlineLabPerTest(88);
  const startLab = (options: LabOptions) => labs.start(options);

  it('hybrid: a secondary diverging on every reply sends it to periodic; calm again, it comes back to compare', async () => {
    const l = await startLab({ nondeterministic: true, checkpointTimerMs: 60_000, config: { protection: hybrid } });
    // One connection after another, each with a few requests: traffic runs through all three phases, and a
    // connection that began while the secondary was noisy ends soon after it is quiet (that connection's
    // secondary stream stays longer than the primary's, so it would go on diverging).
    const work = increments('hits', 20, 3);
    const client = l.client({ kind: 'requests', connections: work.connections, timeoutMs: 120_000 }, 'client-hybrid');

    const toPeriodic = await l.proxy.waitFor(
      (e) => e.event === 'protection-mode' && e.to === 'periodic',
      30_000,
      'hybrid to switch to periodic',
    );
    expect(toPeriodic.from).toBe('compare');
    expect(['divergence-rate', 'paused-share']).toContain(toPeriodic.reason);
    const afterSwitch = l.proxy.events.indexOf(toPeriodic);
    // In periodic mode the comparison goes on in the background and the primary's output leaves at the period's
    // checkpoints.
    await l.proxy.waitForNext(afterSwitch, (e) => e.event === 'divergence', 15_000, 'a background divergence');
    await l.proxy.waitForNext(
      afterSwitch,
      (e) => e.event === 'checkpoint-loaded' && e.reason === 'periodic' && Number(e.flushedFrames) > 0,
      15_000,
      'a periodic checkpoint releasing held output',
    );
    expect(l.proxyEvents('protection-mode').at(-1)?.to, 'still periodic while the secondary is noisy').toBe('periodic');

    await l.control('secondary', 'NONDET', 'off');
    const quietFrom = l.proxy.events.length;
    const calm = await l.proxy.waitForNext(
      quietFrom,
      (e) => e.event === 'protection-mode' && e.to === 'compare',
      30_000,
      'hybrid to switch back to compare',
    );
    expect(switchOf(calm)).toEqual({ from: 'periodic', to: 'compare', reason: 'calm' });

    const result = await l.clientResult<{ replies: Reply[] }>(client, 120_000);
    // Every reply is the primary's (the secondary's carried " ~TOKEN" while noisy), complete and in order.
    expect(result.replies.map((r) => r.reply)).toEqual(work.expected);
    // Replies went on arriving while periodic mode held the output.
    const inPeriodic = result.replies.filter((r) => r.time > toPeriodic.time! && r.time < calm.time!);
    expect(inPeriodic.length).toBeGreaterThan(0);

    // Back in compare mode: new connections are compared and agree, and nothing switches again.
    const switchesBefore = l.proxyEvents('protection-mode').length;
    const quiet = await l.clientResult<{ replies: Reply[] }>(
      l.client({ kind: 'requests', connections: [['INCR hits', 'INCR hits'], ['INCR hits']] }, 'client-quiet'),
      30_000,
    );
    expect(quiet.replies.map((r) => r.reply)).toEqual(['61', '62', '63']);
    const quietPorts = new Set(quiet.replies.map((r) => r.localPort));
    expect(l.proxyEvents('divergence').filter((d) => quietPorts.has(dstPortOf(d)))).toEqual([]);
    expect(l.proxyEvents('protection-mode')).toHaveLength(switchesBefore);

    // Every switch run reported on stdout is in /stats, /metrics and the event log, with its reason. A loaded
    // machine may make hybrid switch more than twice (a stall of the noisy traffic is calm): each surface must
    // still tell the same story, which begins with compare -> periodic and ends with periodic -> compare (calm).
    const switches = l.proxyEvents('protection-mode').map(switchOf);
    expect(switches[0]).toMatchObject({ from: 'compare', to: 'periodic' });
    expect(switches.at(-1)).toEqual({ from: 'periodic', to: 'compare', reason: 'calm' });
    const stats = JSON.parse(await l.stats('/stats')) as Stats;
    expect(stats.inline.protection).toMatchObject({ mode: 'hybrid', active: 'compare', switches: switches.length });
    expect(stats.inline.protection.lastSwitch).toMatchObject({ from: 'periodic', to: 'compare', reason: 'calm' });
    expect(stats.inline.protection.timeInMs.periodic).toBeGreaterThan(0);
    expect(stats.inline.protection.backgroundDivergences).toBeGreaterThan(0);
    expect(stats.inline.counters.modeSwitches).toBe(switches.length);
    expect(modeSwitchSeries(await l.stats('/metrics'))).toEqual(countSwitches(switches));

    // Stopped, the proxy has written each switch to the event log.
    await l.proxy.stop();
    const logged = readFileSync(join(l.dir, 'events.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Event & { type: string });
    expect(logged.filter((e) => e.type === 'mode-switch').map(switchOf)).toEqual(switches);
  }, 180_000);

  it('hybrid: a deterministic workload never leaves compare mode', async () => {
    const l = await startLab({ checkpointTimerMs: 500, config: { protection: hybrid } });
    // Four connections at once, each alternating INCR and GET on its own key: 320 requests.
    const connections = Array.from({ length: 4 }, (_, c) =>
      Array.from({ length: 80 }, (_, i) => (i % 2 === 0 ? `INCR n${c}` : `GET n${c}`)),
    );
    const expected = Array.from({ length: 80 }, (_, i) => String(Math.floor(i / 2) + 1));
    const clients = connections.map((list, c) =>
      l.client({ kind: 'requests', connections: [list.slice(0, 40), list.slice(40)] }, `client-${c}`),
    );
    const results = await Promise.all(clients.map((c) => l.clientResult<{ replies: Reply[] }>(c, 120_000)));
    for (const result of results) expect(result.replies.map((r) => r.reply)).toEqual(expected);
    // The timer's checkpoints paused the pair meanwhile (they count toward the paused share, not the rate).
    await l.proxy.waitFor((e) => e.event === 'checkpoint' && e.seeding !== true, 10_000, 'a timer checkpoint');

    const stats = JSON.parse(await l.stats('/stats')) as Stats;
    expect(stats.inline.protection).toMatchObject({
      mode: 'hybrid',
      active: 'compare',
      switches: 0,
      lastSwitch: null,
      backgroundDivergences: 0,
    });
    expect(stats.inline.protection.timeInMs.periodic).toBe(0);
    expect(stats.inline.counters.modeSwitches).toBe(0);
    expect(stats.divergences.total).toBe(0);
    expect(l.proxyEvents('divergence')).toEqual([]);
    expect(l.proxyEvents('protection-mode')).toEqual([]);
    expect(modeSwitchSeries(await l.stats('/metrics'))).toEqual({});
  }, 180_000);

  it('periodic: a pass-through flow is released at once, every other flow at the periodic checkpoints', async () => {
    // A second service on port 7001 in each VM (management traffic, say), left out of protection by a rule. The
    // checkpoint driver knows only the guests on 7000; a pass-through flow's state is not protected anyway.
    const passPort = 7001;
    const l = await startLab({
      nondeterministic: true,
      checkpointTimerMs: 60_000,
      passthrough: [`tcp:${passPort}`],
      config: { protection: { mode: 'periodic', periodMs: 100 } },
    });
    const guests = (['primary', 'secondary'] as const).map((vm) =>
      l.spawn(`${vm}-guest-${passPort}`, labs.topo[vm], process.execPath, [
        labCli,
        'lab-guest',
        '--listen',
        `${labs.topo.vmIp}:${passPort}`,
        '--control',
        l.socket(`${vm}-${passPort}`),
        ...(vm === 'secondary' ? ['--nondeterministic'] : []),
      ]),
    );
    await Promise.all(guests.map((g) => g.waitFor((e) => e.event === 'listening', 20_000, `${g.name} to listen`)));

    const protectedWork = increments('hits', 3, 2);
    const passedWork = increments('mgmt', 2, 3);
    const [protectedResult, passedResult] = await Promise.all([
      l.clientResult<{ replies: Reply[] }>(
        l.client({ kind: 'requests', connections: protectedWork.connections }, 'client-protected'),
        60_000,
      ),
      l.clientResult<{ replies: Reply[] }>(
        l.client({ kind: 'requests', port: passPort, connections: passedWork.connections }, 'client-passed'),
        60_000,
      ),
    ]);
    // Both flows read the primary's replies only, complete and in order (both secondaries are noisy).
    expect(protectedResult.replies.map((r) => r.reply)).toEqual(protectedWork.expected);
    expect(passedResult.replies.map((r) => r.reply)).toEqual(passedWork.expected);

    const stats = JSON.parse(await l.stats('/stats')) as Stats;
    expect(stats.inline.protection).toMatchObject({ mode: 'periodic', active: 'periodic', switches: 0 });
    // The rule's frames went past periodic mode's hold.
    expect(stats.passthrough).toEqual([expect.objectContaining({ rule: `tcp:${passPort}` })]);
    expect(stats.passthrough[0].frames).toBeGreaterThan(0);
    expect(stats.inline.counters.passedByRuleWhileHeld).toBeGreaterThan(0);
    // The protected flow diverged on every reply, but periodic mode only counts that: every checkpoint is the
    // period's, none was asked for by a divergence.
    expect(stats.inline.counters.backgroundDivergences).toBeGreaterThan(0);
    const divergences = l.proxyEvents('divergence');
    expect(divergences.length).toBeGreaterThan(0);
    const passedPorts = new Set(passedResult.replies.map((r) => r.localPort));
    expect(divergences.filter((d) => passedPorts.has(dstPortOf(d)))).toEqual([]);
    const checkpoints = l.proxyEvents('checkpoint').filter((e) => e.seeding !== true);
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(new Set(checkpoints.flatMap((e) => e.reasons as string[]))).toEqual(new Set(['periodic']));
    // The protected flow's replies left with those checkpoints.
    const released = l.proxyEvents('checkpoint-loaded').filter((e) => e.reason === 'periodic');
    expect(released.some((e) => Number(e.flushedFrames) > 0)).toBe(true);
    expect(l.proxyEvents('protection-mode')).toEqual([]);
    // Counted by reason as every checkpoint asked for is (colo_checkpoint_requests_total{reason}).
    expect(stats.checkpoints.requests.byReason).toEqual({ periodic: expect.any(Number) });
    expect(stats.checkpoints.requests.byReason.periodic).toBeGreaterThan(0);
  }, 120_000);
});
