#!/usr/bin/env node
// Runs the bundle `npm ci` builds (its prepare step, `npm run build`: dist/colo-proxy.mjs). To run the
// TypeScript sources instead, without building: `npm run dev -- ARGS`.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const bundle = new URL('../dist/colo-proxy.mjs', import.meta.url);
if (existsSync(bundle)) {
  // Stack traces (crashes, logged internal errors) name the TypeScript sources, via the bundle's source map.
  process.setSourceMapsEnabled(true);
  await import(bundle.href);
} else {
  process.stderr.write('colo-proxy: dist/colo-proxy.mjs is missing: run npm run build (npm ci runs it)\n');
  process.exitCode = 1;
}
