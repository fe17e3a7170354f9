#!/usr/bin/env node
// The bundle when it is up to date, else the TypeScript sources through tsx: see ./entry.js.
import { URL, fileURLToPath } from 'node:url';
import { chooseEntry } from './entry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
if (chooseEntry(root) === 'bundle') {
  // Stack traces (crashes, logged internal errors) name the TypeScript sources, via the bundle's source map.
  process.setSourceMapsEnabled(true);
  await import('../dist/colo-proxy.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
