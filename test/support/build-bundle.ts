import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * vitest globalSetup: tests that start the CLI run bin/colo-proxy.js, which runs the built bundle only, so
 * the bundle is rebuilt from the sources under test once before the suite (esbuild: well under a second).
 */
export default function buildBundle(): void {
  const root = join(import.meta.dirname, '../..');
  execFileSync(process.execPath, [join(root, 'bin/build.js')], { cwd: root, stdio: 'inherit' });
}
