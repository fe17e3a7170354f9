/**
 * Pass-through rules in a replay of generated captures: the bundled HTTP example whose replies differ (a
 * divergence per reply) mixed with a UDP health check whose replies carry each VM's own timestamp, and a
 * deterministic UDP flow. A rule for the health check must release it uncompared and change nothing else.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePassthroughRules } from '../../compare/passthrough.js';
import { buildExamples } from '../../examples/scenarios.js';
import { openCaptureBuffer } from '../../src/capture/open.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { BufferSink } from '../../src/capture/sink.js';
import { formatSummary } from '../../src/replay/format.js';
import { renderReport } from '../../src/report/html.js';
import { replayFiles } from '../../src/replay/run.js';
import type { ReplaySummary } from '../../src/replay/summary.js';
import { buildUdp } from '../support/wire-build.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-replay-passthrough-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Timed = [ms: number, frame: Buffer];

function framesOf(pcap: Buffer): Timed[] {
  const reader = openCaptureBuffer(pcap);
  const frames: Timed[] = [];
  while (reader.next()) frames.push([reader.record.timeMs(), Buffer.from(reader.record.data)]);
  reader.close();
  return frames;
}

function pcapOf(frames: Timed[]): Buffer {
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { nanosecond: true });
  for (const [ms, frame] of [...frames].sort((a, b) => a[0] - b[0])) {
    const seconds = Math.floor(ms / 1000);
    writer.write(seconds, Math.round((ms - seconds * 1000) * 1e6), frame);
  }
  writer.flush();
  return sink.toBuffer();
}

/**
 * Every 40 ms a health-check reply on udp 9000 (each VM's own clock in it) and a deterministic one on udp 53,
 * 10 ms off the HTTP exchanges: a datagram whose twin arrives after a checkpoint's flush is compared with the
 * next one (rule or not), so the flows keep clear of the flushes, whose times the rule changes.
 */
function udpFlows(start: number, side: 'primary' | 'secondary'): Timed[] {
  const frames: Timed[] = [];
  const lag = side === 'primary' ? 0 : 0.2;
  for (let i = 0; i < 8; i++) {
    const at = start + 10 + i * 40 + lag;
    const clock = side === 'primary' ? 1000 + i : 5000 + i;
    frames.push([
      at,
      buildUdp({ src: '192.0.2.10', dst: '198.51.100.30', srcPort: 9000, dstPort: 41000, payload: `ok t=${clock}` }),
    ]);
    frames.push([
      at + 1,
      buildUdp({ src: '192.0.2.10', dst: '198.51.100.30', srcPort: 53, dstPort: 42000, payload: `answer ${i}` }),
    ]);
  }
  return frames;
}

async function replayWith(rules: string[]): Promise<ReplaySummary> {
  const example = buildExamples().find((pair) => pair.name === 'http-nondeterministic')!;
  const primary = framesOf(example.primary);
  const secondary = framesOf(example.secondary);
  const start = primary[0][0];
  const name = rules.length === 0 ? 'without' : 'with';
  const files = { primary: join(dir, `${name}-primary.pcap`), secondary: join(dir, `${name}-secondary.pcap`) };
  writeFileSync(files.primary, pcapOf([...primary, ...udpFlows(start, 'primary')]));
  writeFileSync(files.secondary, pcapOf([...secondary, ...udpFlows(start, 'secondary')]));
  const parsed = parsePassthroughRules(rules);
  if (!parsed.ok) throw new Error(parsed.error.expected);
  return replayFiles(files, { passthrough: parsed.value, checkpointTimerMs: 0 });
}

const HEALTH = 'udp 192.0.2.10:9000 > 198.51.100.30:41000';

describe('replay with a pass-through rule', () => {
  it('releases the matching flow uncompared and leaves every other flow’s result unchanged', async () => {
    const without = await replayWith([]);
    const withRule = await replayWith(['udp:9000']);
    const health = (s: ReplaySummary) => s.connections.find((c) => c.connection === HEALTH);

    // Without the rule the health check diverges on every reply; with it, never, and all 8 replies go out.
    expect(health(without)?.divergences).toBeGreaterThan(0);
    expect(health(withRule)).toMatchObject({ primary: 8, secondary: 8, released: 8, dropped: 8, divergences: 0 });
    expect(withRule.passthrough).toEqual({
      rules: [{ rule: 'udp:9000', frames: 16 }],
      releasedPrimary: 8,
      droppedSecondary: 8,
    });
    expect(formatSummary(withRule)).toContain(
      'passed through uncompared: 8 primary frames released early (udp:9000: 16 frames)',
    );
    expect(formatSummary(without)).not.toContain('passed through');
    expect(renderReport(withRule)).toContain('udp:9000 (16 frames); 8 primary frames released uncompared');
    expect(renderReport(without)).not.toContain('pass-through rules');
    expect(without.passthrough).toMatchObject({ rules: [], releasedPrimary: 0, droppedSecondary: 0 });

    // Every other flow: the same frames, releases, drops and divergences, rule or not.
    const others = (s: ReplaySummary) => s.connections.filter((c) => c.connection !== HEALTH);
    expect(others(withRule)).toEqual(others(without));
    expect(others(without).filter((c) => c.protocol === 'tcp').length).toBe(3);
    expect(others(without).some((c) => c.divergences > 0)).toBe(true);
    expect(withRule.divergences.length).toBe(without.divergences.length - health(without)!.divergences);
    expect(withRule.frames.released).toBe(without.frames.released);
    expect(withRule.frames.heldAtEnd).toBe(0);
    // What the rule saves: the health check's checkpoints.
    expect(withRule.checkpoints.total).toBeLessThan(without.checkpoints.total);
    expect(without.checkpoints.byReason.payload).toBe(without.divergencesByReason.payload);
  });
});
