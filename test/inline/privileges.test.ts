import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCredentials } from '../../src/inline/privileges.js';
import { inlineLabPerTest, inlineLabPrerequisites } from '../support/inline-lab-suite.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';

/**
 * `colo-proxy run` with `privileges: { user: nobody, group: nogroup }`, in namespaces with the lab guests:
 * the running proxy is nobody with no capabilities at all, and its capture sockets, opened as root, still
 * receive and send (the client's requests reach both guests and the replies come back).
 */

interface Reply {
  localPort: number;
  reply: string;
}

describeWith(inlineLabPrerequisites(hasCommand('getent', 'libc-bin')), 'colo-proxy run drops root (namespaces)', () => {
  const labs = inlineLabPerTest(87);
  let idsDir = '';

  beforeAll(() => {
    // Written by commands the proxy spawns as nobody.
    idsDir = mkdtempSync(join(tmpdir(), 'colo-privileges-'));
    chmodSync(idsDir, 0o755);
  });
  afterAll(() => {
    if (idsDir) rmSync(idsDir, { recursive: true, force: true });
  });

  it('runs as nobody/nogroup with CapEff 0 and still carries the client’s traffic, checkpoints and metrics', async () => {
    // An exec health check is spawned as exec hooks are: it records who it runs as, from its first run on.
    const ids = join(idsDir, 'health-ids.log');
    writeFileSync(ids, '');
    chmodSync(ids, 0o666);
    // Resolves on 'ready': the seeding checkpoint ran after the drop (the lab driver dialed as nobody).
    const l = await labs.start({
      privileges: { user: 'nobody', group: 'nogroup' },
      config: {
        primaryHealth: { kind: 'exec', command: `{ id -u; id -g; } >> ${ids}`, intervalMs: 100, failures: 3 },
      },
    });

    const pid = l.proxy.child.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^Name:\s+node$/m);
    expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    expect(status).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
    const creds = readCredentials(status);
    expect(creds.groups).toEqual([65534]);
    expect(creds.capEff).toBe('0000000000000000');
    expect(creds.capPrm).toBe('0000000000000000');
    expect(readFileSync(l.proxy.logFile, 'utf8')).toContain(
      'privileges: dropped root to nobody (uid 65534), group nogroup (gid 65534); capabilities now 0000000000000000',
    );

    // Both directions through the AF_PACKET sockets opened as root: client -> both VMs, primary -> client.
    const connections = Array.from({ length: 3 }, () => ['INCR hits', 'GET hits']);
    const result = await l.clientResult<{ replies: Reply[] }>(l.client({ kind: 'requests', connections }), 30_000);
    expect(result.replies.map((r) => r.reply)).toEqual(['1', '1', '2', '2', '3', '3']);
    expect(l.proxyEvents('divergence')).toEqual([]);
    // The secondary saw the same requests: its copy of the client's frames went out after the drop too.
    const [primary, secondary] = [await l.guestStatus('primary'), await l.guestStatus('secondary')];
    expect(primary.requests).toBeGreaterThanOrEqual(6);
    expect(secondary.requests).toBe(primary.requests);
    // The metrics listener was bound before the drop and still answers.
    expect(await l.stats('/metrics')).toContain('colo_');
    // Every health check ran as nobody/nogroup, the first one included.
    const seen = readFileSync(ids, 'utf8').trim().split('\n');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seen)).toEqual(new Set(['65534']));
    expect(l.proxyEvents('primary-health')).toEqual([]);
  }, 90_000);

  it('without privileges keeps root, as before, and says so in one warning', async () => {
    const lab = await labs.start();
    const status = readFileSync(`/proc/${lab.proxy.child.pid!}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/m);
    expect(readCredentials(status).capEff).not.toBe('0000000000000000');
    const log = readFileSync(lab.proxy.logFile, 'utf8');
    expect(log).toContain('run keeps root: set privileges.user');
    expect(log).not.toContain('privileges: dropped');
  }, 60_000);
});
