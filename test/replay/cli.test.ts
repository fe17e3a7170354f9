import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openCaptureFile, readAll } from '../../src/capture/open.js';
import { replayFiles } from '../../src/replay/run.js';
import type { ReplaySummary } from '../../src/replay/summary.js';
import { malformedCorpus } from '../capture/corpus.js';

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

  /** Runs the CLI in `cwd`; resolves with its exit status and output whatever the status (killed after 30 s). */
  function replayCli(args: string[], cwd = root): Promise<{ code: number; stdout: string; stderr: string }> {
    return run('node', [cli, 'replay', ...args], { cwd, timeout: 30_000 }).then(
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

  it('replays a capture whose last record is stamped 0xFFFFFFFF s in one logged jump of the clock', async () => {
    // The gap is 80 years: the clock used to fire CHKPOINT_TIMER every 10 s through it until out of memory.
    const bytes = readFileSync(example('http', 'primary'));
    const reader = openCaptureFile(example('http', 'primary'));
    let last = -1;
    while (reader.next()) last = reader.record.offset;
    reader.close();
    expect(bytes.readUInt32LE(0)).toBe(0xa1b2c3d4);
    bytes.writeUInt32LE(0xffffffff, last);
    const far = join(dir, 'far-future.pcap');
    writeFileSync(far, bytes);
    const started = performance.now();
    const outcome = await replayCli(['--primary', far, '--secondary', example('http', 'secondary'), '--json', '-']);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(performance.now() - started).toBeLessThan(20_000);
    const summary = JSON.parse(outcome.stdout) as ReplaySummary;
    expect(summary.clock.jumps).toBe(1);
    expect(summary.clock.timersSkipped).toBeGreaterThan(250_000_000);
    expect(summary.checkpoints.total).toBeLessThan(10);
    const jumped = outcome.stderr
      .split('\n')
      .filter((line) => line.includes('virtual clock jumped over empty time'))
      .map((line) => JSON.parse(line) as { jumpedMs: number; timersSkipped: number });
    expect(jumped).toHaveLength(1);
    expect(jumped[0].jumpedMs).toBeCloseTo(summary.clock.jumpedMs, 0);
  });

  it('stops at once, status 2, on a pcapng interface whose if_tsoffset is 2^62 s, naming the field and value', async () => {
    const entry = malformedCorpus().find((e) => e.name === 'tsoffset-2-62.pcapng')!;
    const file = join(dir, entry.name);
    writeFileSync(file, entry.bytes);
    const outcome = await replayCli(['--primary', example('http', 'primary'), '--secondary', file]);
    expect(outcome.code, outcome.stderr).toBe(2);
    expect(outcome.stderr.trim()).toMatch(
      /^colo-proxy: --secondary: .*tsoffset-2-62\.pcapng: byte offset \d+: timestamp-out-of-range: interface 0: if_tsoffset 4611686018427387904 s /,
    );
  });

  it('reports a timestamp out of range later in the file as a read error, status 1', async () => {
    const entry = malformedCorpus().find((e) => e.name === 'timestamp-beyond-2-40.pcapng')!;
    const file = join(dir, entry.name);
    writeFileSync(file, entry.bytes);
    const outcome = await replayCli(['--primary', file, '--secondary', example('http', 'secondary'), '--json', '-']);
    expect(outcome.code, outcome.stderr).toBe(1);
    const summary = JSON.parse(outcome.stdout) as ReplaySummary;
    expect(summary.readErrors).toEqual([
      expect.objectContaining({ side: 'primary', code: 'timestamp-out-of-range', framesBefore: 1 }),
    ]);
    expect(summary.readErrors[0].message).toContain('packet timestamp 1103806595072 (1/1 s units)');
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
