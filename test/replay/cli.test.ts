import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  /** Runs the CLI in `cwd`; resolves with its exit status and output whatever the status. */
  function replayCli(args: string[], cwd = root): Promise<{ code: number; stdout: string; stderr: string }> {
    return run('node', [cli, 'replay', ...args], { cwd }).then(
      (ok) => ({ code: 0, ...ok }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
  }

  const both = ['--primary', example('http', 'primary'), '--secondary', example('http', 'secondary')];

  it('checks every output path before replaying: a missing directory stops at once, status 2', async () => {
    const events = join(dir, 'not-written.ndjson');
    const outcome = await replayCli([...both, '--events', events, '--json', join(dir, 'no/such/dir/x.json')]);
    expect(outcome.code).toBe(2);
    expect(outcome.stdout).toBe('');
    expect(outcome.stderr).toMatch(/^colo-proxy: config field "--json": expected a writable file path \(directory /);
    expect(outcome.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(events)).toBe(false);
    const isDir = await replayCli([...both, '--report', dir]);
    expect(isDir.code).toBe(2);
    expect(isDir.stderr).toMatch(/"--report": expected a writable file path \(it is a directory\)/);
  });

  it('writes --json - and --events - to standard output, never to a file named -', async () => {
    const cwd = mkdtempSync(join(dir, 'stdout-'));
    const json = await replayCli([...both, '--json', '-'], cwd);
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.stdout) as ReplaySummary;
    expect(summary.schema).toBe('colo-proxy/replay-summary');
    expect(summary.frames.primary).toBe(21);
    const nondeterministic = ['--primary', example('http-nondeterministic', 'primary')];
    const secondary = ['--secondary', example('http-nondeterministic', 'secondary')];
    const events = await replayCli([...nondeterministic, ...secondary, '--events', '-'], cwd);
    expect(events.code).toBe(0);
    const lines = events.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string });
    expect(lines.map((e) => e.type)).toEqual([
      'divergence',
      'checkpoint',
      'divergence',
      'checkpoint',
      'divergence',
      'checkpoint',
    ]);
    expect(existsSync(join(cwd, '-'))).toBe(false);
    const twice = await replayCli([...both, '--json', '-', '--events', '-'], cwd);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/"--events"/);
  });

  it('checks both captures before replaying: a bad side stops at once with no invented divergences', async () => {
    const empty = join(dir, 'empty.pcap');
    const text = join(dir, 'text.pcap');
    writeFileSync(empty, '');
    writeFileSync(text, 'not a capture at all\n');
    const cases: [string[], RegExp][] = [
      [
        ['--primary', example('http', 'primary'), '--secondary', empty],
        /^colo-proxy: --secondary: .*empty\.pcap: byte offset 0: truncated-header/,
      ],
      [
        ['--primary', text, '--secondary', example('http', 'secondary')],
        /^colo-proxy: --primary: .*text\.pcap: byte offset 0: bad-magic/,
      ],
    ];
    for (const [args, message] of cases) {
      const events = join(dir, 'bad-side.ndjson');
      const outcome = await replayCli([...args, '--events', events]);
      expect(outcome.code, outcome.stderr).toBe(2);
      expect(outcome.stderr).toMatch(message);
      expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
      expect(outcome.stdout).toBe('');
      expect(existsSync(events)).toBe(false);
    }
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
