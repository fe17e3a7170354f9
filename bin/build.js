#!/usr/bin/env node
// `npm run build`: the CLI as one esbuild bundle, dist/colo-proxy.mjs with its source map, which
// bin/colo-proxy.js runs. Each file is written under a temporary name and renamed into place, so a
// colo-proxy starting meanwhile (a test run beside a build) loads the old bundle or the new one, never part.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { URL, fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/colo-proxy.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
  write: false,
}).catch(() => {
  // esbuild has printed each error with its place in the sources: a stack trace would add nothing.
  process.exit(1);
});
// The map first: a bundle is never in place before the map its last line names.
const files = [...result.outputFiles].sort((a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')));
for (const file of files) {
  mkdirSync(dirname(file.path), { recursive: true });
  const temporary = `${file.path}.${process.pid}.tmp`;
  writeFileSync(temporary, file.contents);
  renameSync(temporary, file.path);
}
