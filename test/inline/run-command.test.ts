import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'colo-run-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runWith(yaml: string): Promise<{ code: number; stderr: string }> {
  const file = join(dir, `run-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  try {
    await run(process.execPath, ['bin/colo-proxy.js', 'run', '--config', file], { timeout: 30_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

describe('colo-proxy run (startup errors)', () => {
  it('exits 2 with one line naming the bad field and what it expects', async () => {
    const { code, stderr } = await runWith(`
interfaces: { client: a, primary: b, secondary: c }
checkpoint: { endpoint: connect:unix:/nonexistent.sock, plaintext: true, driver: { kind: lab, control: /x.sock } }
gate: { maxHeldFrames: 0 }
`);
    expect(code).toBe(2);
    expect(stderr).toContain('config field "gate.maxHeldFrames"');
    expect(stderr).toContain('a positive integer');
  }, 40_000);

  it('refuses to start on an interface whose offloads it cannot read, naming it', async () => {
    const { code, stderr } = await runWith(`
interfaces: { client: colonoif0, primary: colonoif1, secondary: colonoif2 }
checkpoint: { endpoint: connect:unix:/nonexistent.sock, plaintext: true, driver: { kind: lab, control: /x.sock } }
`);
    expect(code).not.toBe(0);
    expect(stderr).toContain('cannot read offloads of colonoif0');
  }, 40_000);
});
