import { afterEach, describe, expect, it } from 'vitest';
import { buildUdp } from '../support/wire-build.js';
import { frameOf, type Peer } from '../ports/support.js';
import { CompareProcess } from './support.js';

/** `colo-proxy compare --passthrough`: the drop-in over loopback sockets, rules from the flag and at run time. */

const running: CompareProcess[] = [];
const peers: Peer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const proc of running.splice(0)) await proc.stop();
});

const udp = (dstPort: number, payload: string): Buffer =>
  buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 4000, dstPort, payload });

interface PassthroughStats {
  passthrough: { rule: string; frames: number }[];
  engine: { passedThroughRulePrimary: number; passedThroughRuleSecondary: number; connections: number };
}

describe('colo-proxy compare --passthrough', { timeout: 120_000 }, () => {
  it('releases a matching primary frame before its twin arrives, drops the twin, and takes new rules over HTTP', async () => {
    const proc = await CompareProcess.start(['--passthrough', 'udp:5353'], { notify: false });
    running.push(proc);
    const out = await proc.connect('outdev');
    const pri = await proc.connect('primary-in');
    const sec = await proc.connect('secondary-in');
    peers.push(out, pri, sec);

    // No secondary frame at all: only the rule can release it.
    await pri.write(frameOf(udp(5353, 'primary time 1')));
    await out.sink.waitFor(1);
    expect(out.sink.frames[0].frame.equals(udp(5353, 'primary time 1'))).toBe(true);
    await sec.write(frameOf(udp(5353, 'secondary time 9')));
    const stats = (await proc.statsUntil(
      (s) => (s as unknown as PassthroughStats).engine.passedThroughRuleSecondary === 1,
    )) as unknown as PassthroughStats;
    expect(stats.engine).toMatchObject({ passedThroughRulePrimary: 1, connections: 0 });
    expect(stats.passthrough).toEqual([{ rule: 'udp:5353', frames: 2 }]);
    const metrics = await proc.metricsText();
    expect(metrics).toContain('colo_passthrough_frames_total{side="primary"} 1');
    expect(metrics).toContain('colo_passthrough_frames_total{side="secondary"} 1');

    // Replaced at run time: port 5353 is compared again, port 9000 passes.
    const url = `http://${proc.endpoints.metrics}/passthrough`;
    const put = await fetch(url, { method: 'PUT', body: '["udp:9000"]' });
    expect(await put.json()).toEqual({ rules: [{ rule: 'udp:9000', frames: 0 }] });
    await pri.write(frameOf(udp(5353, 'held')));
    await pri.write(frameOf(udp(9000, 'passes')));
    await out.sink.waitFor(2);
    expect(out.sink.frames[1].frame.equals(udp(9000, 'passes'))).toBe(true);
    await sec.write(frameOf(udp(5353, 'held')));
    await out.sink.waitFor(3);
    expect(out.sink.frames[2].frame.equals(udp(5353, 'held'))).toBe(true);
  });

  it('refuses a bad rule at startup naming the flag and the rule', async () => {
    await expect(CompareProcess.start(['--passthrough', 'udp:53-1'], { notify: false })).rejects.toThrow(
      /--passthrough udp:53-1.*LOW <= HIGH/,
    );
  });
});
