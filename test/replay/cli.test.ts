import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openCaptureFile, readAll } from '../../src/capture/open.js';
import { replayFiles } from '../../src/replay/run.js';
import type { ReplaySummary } from '../../src/replay/summary.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const cli = join(root, 'bin/colo-proxy.js');
const dir = mkdtempSync(join(tmpdir(), 'colo-replay-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const example = (name: string, side: string): string => join(root, 'examples', name, `${side}.pcap`);

describe('colo-proxy replay', { timeout: 60_000 }, () => {
  it('writes the JSON summary, the divergences pcapng, the event log and the report', async () => {
    const out = (f: string): string => join(dir, f);
    const { stdout, stderr } = await run('node', [
      cli,
      'replay',
      '--primary',
      example('http-nondeterministic', 'primary'),
      '--secondary',
      example('http-nondeterministic', 'secondary'),
      '--json',
      out('s.json'),
      '--divergences',
      out('d.pcapng'),
      '--events',
      out('e.ndjson'),
      '--report',
      out('r.html'),
    ]);
    // Not a terminal: a summary on stdout, no progress bar anywhere.
    expect(stdout).toContain('checkpoints: 3 (payload 3)');
    expect(stderr).toBe('');

    const summary = JSON.parse(readFileSync(out('s.json'), 'utf8')) as ReplaySummary;
    const direct = await replayFiles({
      primary: example('http-nondeterministic', 'primary'),
      secondary: example('http-nondeterministic', 'secondary'),
    });
    expect(summary).toEqual(JSON.parse(JSON.stringify(direct)));

    const pairs = readAll(openCaptureFile(out('d.pcapng'))).frames;
    expect(pairs.map((f) => f.interfaceId)).toEqual([0, 1, 0, 1, 0, 1]);
    expect(pairs[0].comment).toMatch(
      /^divergence 1: payload, offset 47, tcp 192\.0\.2\.10:80 > 198\.51\.100\.20:40000/,
    );
    // Capture timestamps, not virtual ones: the first divergence's primary frame is the one at 1.000 ms.
    expect([pairs[0].seconds, pairs[0].nanoseconds, pairs[1].nanoseconds]).toEqual([1767225600, 1_000_000, 1_150_000]);

    const events = readFileSync(out('e.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; time: number; reason: string });
    expect(events.map((e) => `${e.type} ${e.reason}`)).toEqual([
      'divergence payload',
      'checkpoint payload',
      'divergence payload',
      'checkpoint payload',
      'divergence payload',
      'checkpoint payload',
    ]);
    expect(events[0].time).toBeCloseTo(1767225600001.15, 3);

    const html = readFileSync(out('r.html'), 'utf8');
    expect(html).toMatch(/<html/i);
    expect(html).toContain('198.51.100.20:40000');
  });

  it('rejects a pcapng interface the file does not declare', async () => {
    const failed = (await run('node', [
      cli,
      'replay',
      '--pcapng',
      join(dir, 'd.pcapng'),
      '--primary-if',
      '0',
      '--secondary-if',
      '5',
    ]).catch((err: unknown) => err)) as { code: number; stderr: string };
    expect(failed.code).toBe(2);
    expect(failed.stderr).toMatch(/"--secondary-if": expected an interface index below 2/);
  });

  it('replays one pcapng by interface', async () => {
    const { stdout } = await run('node', [
      cli,
      'replay',
      '--pcapng',
      join(dir, 'd.pcapng'),
      '--primary-if',
      '0',
      '--secondary-if',
      '1',
      '--compare-timeout',
      '500',
      '--expired-scan-cycle',
      '100',
    ]);
    expect(stdout).toMatch(/frames: primary 3, secondary 3/);
  });

  it('reports a bad file with its name and offset, still summarises what was read, exits 1', async () => {
    const cut = join(dir, 'cut.pcap');
    const whole = readFileSync(example('http', 'primary'));
    writeFileSync(cut, whole.subarray(0, whole.length - 10));
    const json = join(dir, 'cut.json');
    const failed = await run('node', [
      cli,
      'replay',
      '--primary',
      cut,
      '--secondary',
      example('http', 'secondary'),
      '--json',
      json,
    ]).catch((err: { code: number; stdout: string; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toMatch(/cut\.pcap: byte offset \d+: record-beyond-file/);
    const summary = JSON.parse(readFileSync(json, 'utf8')) as ReplaySummary;
    expect(summary.readErrors).toEqual([
      expect.objectContaining({ side: 'primary', file: cut, code: 'record-beyond-file', framesBefore: 20 }),
    ]);
    expect(summary.frames.primary).toBe(20);
    expect(summary.frames.secondary).toBe(21);
  });

  it('rejects bad options with the flag named and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--primary', example('http', 'primary')], /--primary\/--secondary/],
      [
        ['--primary', example('http', 'primary'), '--secondary', example('http', 'secondary'), '--speed', 'fast'],
        /"--speed"/,
      ],
      [['--pcapng', example('http', 'primary'), '--primary-if', '1', '--secondary-if', '1'], /"--secondary-if"/],
      [
        ['--pcapng', example('http', 'primary'), '--primary-if', '0', '--secondary-if', '1'],
        /"--pcapng".*a pcapng file/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await run('node', [cli, 'replay', ...args]).then(
        (ok) => ({ code: 0, stderr: ok.stderr }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  }, 120_000);
});

describe('colo-proxy demo (npm start)', { timeout: 60_000 }, () => {
  it('replays every bundled example and prints a readable summary, exit 0', async () => {
    const { stdout } = await run('node', [cli, 'demo'], { cwd: root });
    expect(stdout).toContain('== http (examples/http/{primary,secondary}.pcap)');
    expect(stdout).toContain('== http-nondeterministic');
    expect(stdout).toContain('== resegmented');
    expect(stdout).toContain('payload at offset 47  tcp 192.0.2.10:80 > 198.51.100.20:40000');
    expect(stdout).toMatch(/primary 21, secondary 27 -> released 21, dropped 27/);
  });
});
