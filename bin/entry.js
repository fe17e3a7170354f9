// Which code `colo-proxy` runs: the bundle `npm ci` builds (`npm run build`: dist/colo-proxy.mjs) when it is
// newer than every source file it was built from, else the TypeScript sources through tsx. A checkout thus
// needs no build step and never runs stale output, while an installed one runs plain JavaScript: no tsx
// loader thread, no esbuild service process, whose wake-ups showed in the compare path's latency tail
// (docs/compare.md, "Latency at low rate").
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The directories the bundle is built from (src -> proxy -> compare). */
export const SOURCE_DIRS = ['src', 'proxy', 'compare'];
export const BUNDLE = join('dist', 'colo-proxy.mjs');

/** The newest modification time (ms) of a .ts file under `dir`, or 0 when there is none. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * 'bundle' when `root`'s bundle exists and is at least as new as every source file, else 'source'.
 * COLO_PROXY_FROM_SOURCE=1 forces 'source'.
 */
export function chooseEntry(root, env = process.env) {
  if (env.COLO_PROXY_FROM_SOURCE === '1') return 'source';
  let built;
  try {
    built = statSync(join(root, BUNDLE)).mtimeMs;
  } catch {
    return 'source';
  }
  for (const dir of SOURCE_DIRS) {
    try {
      if (newestSource(join(root, dir)) > built) return 'source';
    } catch {
      // a directory missing from an installed package: nothing in it to be stale against
    }
  }
  return 'bundle';
}
