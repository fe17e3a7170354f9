import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('colo-proxy CLI', () => {
  it('prints help naming its subcommands', async () => {
    const { stdout } = await run('node', ['bin/colo-proxy.js', '--help']);
    expect(stdout).toContain('Usage: colo-proxy');
    expect(stdout).toContain('demo');
  });

  it('rejects an unknown subcommand with a non-zero exit', async () => {
    await expect(run('node', ['bin/colo-proxy.js', 'no-such-command'])).rejects.toMatchObject({ code: 1 });
  });
});
