import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE, chooseEntry } from '../bin/entry.js';

const run = promisify(execFile);

describe('bin/entry.js: bundle or sources', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  /** A fake checkout: each file with its modification time in seconds. */
  function checkout(files: Record<string, number>): string {
    const root = mkdtempSync(join(tmpdir(), 'colo-entry-'));
    roots.push(root);
    for (const [path, seconds] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), '');
      utimesSync(join(root, path), seconds, seconds);
    }
    return root;
  }

  it('runs the bundle when it is newer than every source file', () => {
    const root = checkout({
      [BUNDLE]: 2000,
      'src/cli/main.ts': 1000,
      'proxy/ports/ring.ts': 1500,
      'compare/tcp.ts': 1999,
    });
    expect(chooseEntry(root, {})).toBe('bundle');
  });

  it('runs the sources when any of them, however deep, changed after the build', () => {
    const root = checkout({ [BUNDLE]: 2000, 'src/cli/main.ts': 1000, 'compare/wire/tcp.ts': 2001 });
    expect(chooseEntry(root, {})).toBe('source');
  });

  it('runs the sources when nothing was built, or when told to', () => {
    expect(chooseEntry(checkout({ 'src/cli/main.ts': 1000 }), {})).toBe('source');
    const built = checkout({ [BUNDLE]: 2000, 'src/cli/main.ts': 1000 });
    expect(chooseEntry(built, { COLO_PROXY_FROM_SOURCE: '1' })).toBe('source');
  });

  it('ignores files that are not TypeScript sources', () => {
    const root = checkout({ [BUNDLE]: 2000, 'src/cli/main.ts': 1000, 'src/README.md': 3000 });
    expect(chooseEntry(root, {})).toBe('bundle');
  });

  it('runs the CLI from the sources too', async () => {
    const { stdout } = await run('node', ['bin/colo-proxy.js', '--help'], {
      env: { ...process.env, COLO_PROXY_FROM_SOURCE: '1' },
    });
    expect(stdout).toContain('Usage: colo-proxy');
  });
});
