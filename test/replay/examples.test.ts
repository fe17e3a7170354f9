import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildExamples } from '../../examples/scenarios.js';
import { openCaptureFile, readAll } from '../../src/capture/open.js';
import { PcapngWriter } from '../../src/capture/pcapng-writer.js';
import { FileSink } from '../../src/capture/sink.js';
import { replayFiles } from '../../src/replay/run.js';
import { divergenceVirtualMs, type ReplaySummary } from '../../src/replay/summary.js';

const examples = join(import.meta.dirname, '../../examples');
const dir = mkdtempSync(join(tmpdir(), 'colo-examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Documented {
  example: string;
  row: Record<string, string>;
}

/** The counts table of examples/README.md: the documentation is what the test holds the replay to. */
function documentedCounts(): Documented[] {
  const text = readFileSync(join(examples, 'README.md'), 'utf8');
  const table = text
    .split('<!-- counts:')[1]
    .split('\n')
    .filter((l) => l.startsWith('|'));
  const cells = (line: string): string[] =>
    line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  const header = cells(table[0]);
  return table.slice(2).map((line) => {
    const row = Object.fromEntries(cells(line).map((c, i) => [header[i], c]));
    return { example: row.example, row };
  });
}

function observed(s: ReplaySummary): Record<string, string> {
  const reasons = Object.entries(s.checkpoints.byReason).map(([r, n]) => `${r} ${n}`);
  const offsets = s.divergences.map((d) => String(d.offset));
  return {
    'frames.primary': String(s.frames.primary),
    'frames.secondary': String(s.frames.secondary),
    'frames.released': String(s.frames.released),
    'frames.dropped': String(s.frames.dropped),
    'frames.malformed': String(s.frames.malformed),
    'frames.heldAtEnd': String(s.frames.heldAtEnd),
    'checkpoints.total': String(s.checkpoints.total),
    'checkpoints.byReason': reasons.length === 0 ? '-' : reasons.join(', '),
    divergences: String(s.divergences.length),
    'divergence offsets': offsets.length === 0 ? '-' : offsets.join(' '),
  };
}

function pair(name: string): { primary: string; secondary: string } {
  return { primary: join(examples, name, 'primary.pcap'), secondary: join(examples, name, 'secondary.pcap') };
}

describe('bundled examples', () => {
  const documented = documentedCounts();

  it('the README documents every example the generator builds', () => {
    expect(documented.map((d) => d.example)).toEqual(buildExamples().map((e) => e.name));
  });

  it('regenerating gives the committed files byte for byte', () => {
    for (const e of buildExamples()) {
      expect(readFileSync(pair(e.name).primary).equals(e.primary), `${e.name}/primary.pcap`).toBe(true);
      expect(readFileSync(pair(e.name).secondary).equals(e.secondary), `${e.name}/secondary.pcap`).toBe(true);
    }
  });

  for (const { example, row } of documented) {
    it(`${example}: replay gives exactly the documented counts`, async () => {
      const summary = await replayFiles(pair(example));
      const { example: _name, ...expected } = row;
      expect(observed(summary)).toEqual(expected);
      const f = summary.frames;
      expect(f.primary + f.secondary).toBe(f.released + f.dropped + f.malformed + f.heldAtEnd);
      expect(summary.readErrors).toEqual([]);
    });

    it(`${example}: the same input gives the same summary, and a two-interface pcapng the same counts`, async () => {
      const first = await replayFiles(pair(example));
      const again = await replayFiles(pair(example));
      expect(again).toEqual(first);

      const path = join(dir, `${example}.pcapng`);
      const sink = new FileSink(path);
      const writer = new PcapngWriter(sink);
      writer.addInterface({ name: 'secondary' });
      writer.addInterface({ name: 'primary' });
      const p = readAll(openCaptureFile(pair(example).primary)).frames;
      const s = readAll(openCaptureFile(pair(example).secondary)).frames;
      // Interleaved in time order, as one capture of both taps would be.
      const all = [...p.map((f) => ({ ...f, interfaceId: 1 })), ...s.map((f) => ({ ...f, interfaceId: 0 }))].sort(
        (a, b) => a.seconds - b.seconds || a.nanoseconds - b.nanoseconds || a.interfaceId - b.interfaceId,
      );
      for (const f of all) writer.writePacket(f.interfaceId, f.seconds, f.nanoseconds, f.data);
      writer.flush();
      sink.close();
      const fromPcapng = await replayFiles({ pcapng: path, primaryIf: 1, secondaryIf: 0 });
      expect(observed(fromPcapng)).toEqual(observed(first));
      expect(fromPcapng.divergences).toEqual(first.divergences);
      expect(fromPcapng.inputs.primary).toMatchObject({ format: 'pcapng', interface: 1, frames: first.frames.primary });
    });
  }

  it('http-nondeterministic: each divergence names its connection, protocol, reason and offset', async () => {
    const summary = await replayFiles(pair('http-nondeterministic'));
    expect(
      summary.divergences.map((d) => ({
        time: divergenceVirtualMs(summary, d),
        connection: d.connection,
        reason: d.reason,
        offset: d.offset,
      })),
    ).toEqual(
      [0, 1, 2].map((i) => ({
        time: 100 * i + 1.15,
        connection: { protocol: 'tcp', src: '192.0.2.10', srcPort: 80, dst: '198.51.100.20', dstPort: 40000 + i },
        reason: 'payload',
        offset: 47,
      })),
    );
    // The window marks the first byte that differs, in both frames, at the same place in each payload.
    for (const d of summary.divergences) {
      const { primary, secondary } = d.window!;
      const byteAt = (w: typeof primary) => w!.hex.slice((w!.at - w!.offset) * 2, (w!.at - w!.offset) * 2 + 2);
      expect(primary!.at).toBe(secondary!.at);
      expect(byteAt(primary)).not.toBe(byteAt(secondary));
      expect(primary!.hex.slice(0, (primary!.at - primary!.offset) * 2)).toBe(
        secondary!.hex.slice(0, (secondary!.at - secondary!.offset) * 2),
      );
    }
    expect(summary.checkpoints.list.map((c) => [c.reason, c.startedAt, c.completedAt, c.released])).toEqual(
      [0, 1, 2].map((i) => ['payload', 100 * i + 1.15, 100 * i + 21.15, 5]),
    );
    expect(summary.connections.every((c) => c.divergences === 1 && c.released === 7)).toBe(true);
  });
});
