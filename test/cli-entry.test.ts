import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

describe('bin/colo-proxy.js runs the built bundle', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of bin/colo-proxy.js in a fresh checkout-shaped directory, with the given files beside it. */
  function install(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'colo-bin-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(root, 'bin/colo-proxy.js'), join(dir, 'bin/colo-proxy.js'));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  it('imports dist/colo-proxy.mjs, even when a source file is newer, and looks at nothing else', async () => {
    const dir = install({
      'dist/colo-proxy.mjs': "process.stdout.write('bundle ' + process.argv.slice(2).join(' '));\n",
      'src/cli/main.ts': "throw new Error('the sources must not run');\n",
    });
    const { stdout } = await run(process.execPath, [join(dir, 'bin/colo-proxy.js'), 'demo', '--x']);
    expect(stdout).toBe('bundle demo --x');
  });

  it('says to build when the bundle is missing, in one line, with exit status 1', async () => {
    const dir = install({ 'src/cli/main.ts': "throw new Error('the sources must not run');\n" });
    const failed = (await run(process.execPath, [join(dir, 'bin/colo-proxy.js'), '--help']).catch(
      (err: unknown) => err,
    )) as { code: number; stderr: string; stdout: string };
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toBe('colo-proxy: dist/colo-proxy.mjs is missing: run npm run build (npm ci runs it)\n');
  });

  it('runs from the sources through a script of its own (npm run dev)', async () => {
    const { stdout } = await run('npm', ['run', '--silent', 'dev', '--', '--version'], { cwd: root });
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(stdout.trim()).toBe(version);
  });

  it('needs neither tsx nor esbuild at run time: both are development dependencies', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    for (const name of ['tsx', 'esbuild']) {
      expect(pkg.dependencies[name], name).toBeUndefined();
      expect(pkg.devDependencies[name], name).toBeDefined();
    }
    expect(pkg.scripts.prepare).toBe('npm run build');
  });
});
