import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

/**
 * A test whose prerequisite is missing skips with a visible reason; under COLO_REQUIRE_ALL=1 (CI) it fails
 * instead, so a missing install step cannot pass silently.
 */
export interface Prerequisite {
  name: string;
  ok: boolean;
  /** What to do to satisfy it, e.g. "apt-get install qemu-system-x86". */
  fix: string;
}

export const requireAll = process.env.COLO_REQUIRE_ALL === '1';

export function isRoot(): Prerequisite {
  return { name: 'root', ok: process.getuid?.() === 0, fix: 'run the suite as root (network namespaces)' };
}

export function hasCommand(command: string, debianPackage: string): Prerequisite {
  let ok = true;
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
  } catch {
    ok = false;
  }
  return { name: command, ok, fix: `apt-get install ${debianPackage}` };
}

/** describe() that runs only when every prerequisite holds; otherwise skips (or fails under COLO_REQUIRE_ALL). */
export function describeWith(prerequisites: Prerequisite[], title: string, body: () => void): void {
  const missing = prerequisites.filter((p) => !p.ok);
  if (missing.length === 0) {
    describe(title, body);
    return;
  }
  const reason = missing.map((p) => `${p.name} missing (${p.fix})`).join('; ');
  if (requireAll) {
    describe(title, () => {
      it(`prerequisites: ${reason}`, () => {
        throw new Error(`COLO_REQUIRE_ALL=1 and a prerequisite is missing: ${reason}`);
      });
    });
  } else {
    describe.skip(`${title} [skipped: ${reason}]`, body);
  }
}
