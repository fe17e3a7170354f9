import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { loadInlineConfig, runFlags } from '../../src/config/inline.js';
import { declareFlags } from '../../src/config/load.js';
import { checkCanSwitch, readCredentials, resolveIdentity, type Lookup } from '../../src/inline/privileges.js';
import { configError, configFiles } from '../support/config-files.js';

const file = configFiles('colo-privileges-config-').write;

const minimal = `
interfaces: { client: colonoif0, primary: colonoif1, secondary: colonoif2 }
checkpoint: { endpoint: connect:unix:/nonexistent.sock, plaintext: true, driver: { kind: lab, control: /x.sock } }
`;

/** A host with nobody (65534, primary group 65534 nogroup) and a group libvirt (120) and nothing else. */
const lookup: Lookup = (database, key) => {
  const passwd = [['nobody', 'x', '65534', '65534', '', '/', '/usr/sbin/nologin']];
  const group = [
    ['nogroup', 'x', '65534', ''],
    ['libvirt', 'x', '120', 'nobody'],
  ];
  const table = database === 'passwd' ? passwd : group;
  return table.find((entry) => entry[0] === key || entry[2] === key) ?? null;
};

describe('privileges config (colo-proxy run)', () => {
  it('is absent unless set; takes names, numeric ids and numeric strings', () => {
    expect(loadInlineConfig(file(minimal)).privileges).toBeUndefined();
    expect(loadInlineConfig(file(`${minimal}privileges: { user: nobody, group: nogroup }`)).privileges).toEqual({
      user: 'nobody',
      group: 'nogroup',
    });
    expect(loadInlineConfig(file(`${minimal}privileges: { user: 65534, group: '65534' }`)).privileges).toEqual({
      user: 65534,
      group: 65534,
    });
  });

  it('names the field and what it expects for a bad value', () => {
    const cases: Array<[string, string, string]> = [
      ['privileges: { user: "" }', 'privileges.user', 'a user name'],
      ['privileges: { user: -1 }', 'privileges.user', 'or a numeric uid'],
      ['privileges: { user: "no body" }', 'privileges.user', 'a user name'],
      ['privileges: { group: nogroup }', 'privileges.user', 'a user name'],
      ['privileges: { user: nobody, group: 1.5 }', 'privileges.group', 'or a numeric gid'],
      ['privileges: nobody', 'privileges', 'a mapping with user'],
    ];
    for (const [yaml, field, expected] of cases) {
      const err = configError(() => loadInlineConfig(file(`${minimal}${yaml}`)));
      expect(err.field, yaml).toBe(field);
      expect(err.message, yaml).toContain(expected);
    }
  });

  it('each flag is its field path in kebab-case, and flags override the file', () => {
    const kebab = (path: string): string =>
      '--' + path.replace(/\./g, '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    for (const spec of runFlags) expect(spec.flag.split(' ')[0], spec.path).toBe(kebab(spec.path));
    const command = declareFlags(new Command('run').exitOverride(), runFlags);
    command.parse(['--privileges-user', 'nobody', '--privileges-group', '65534'], { from: 'user' });
    const config = loadInlineConfig(file(`${minimal}privileges: { user: root }`), command.opts());
    expect(config.privileges).toEqual({ user: 'nobody', group: 65534 });
  });

  it('resolves names to ids, taking the user’s own group when none is given', () => {
    expect(resolveIdentity({ user: 'nobody' }, lookup)).toEqual({
      name: 'nobody',
      uid: 65534,
      gid: 65534,
      groupName: 'nogroup',
    });
    expect(resolveIdentity({ user: 65534, group: 'libvirt' }, lookup)).toMatchObject({ uid: 65534, gid: 120 });
    expect(resolveIdentity({ user: 4000, group: 4000 }, lookup)).toEqual({
      name: null,
      uid: 4000,
      gid: 4000,
      groupName: null,
    });
  });

  it('refuses a user or group this host does not have, naming the field', () => {
    const user = configError(() => resolveIdentity({ user: 'colo_no_such_user' }, lookup));
    expect(user.field).toBe('privileges.user');
    expect(user.message).toContain('a user that exists on this host');
    expect(user.message).toContain('colo_no_such_user');
    const group = configError(() => resolveIdentity({ user: 'nobody', group: 'colo_no_such_group' }, lookup));
    expect(group.field).toBe('privileges.group');
    expect(group.message).toContain('colo_no_such_group');
    const noGroup = configError(() => resolveIdentity({ user: 4000 }, lookup));
    expect(noGroup.field).toBe('privileges.group');
    expect(noGroup.message).toContain('uid 4000 has no passwd entry');
  });

  it('refuses to switch users when not started as root', () => {
    const identity = resolveIdentity({ user: 'nobody' }, lookup);
    expect(() => checkCanSwitch(identity, 0)).not.toThrow();
    expect(() => checkCanSwitch(identity, 65534)).not.toThrow();
    const err = configError(() => checkCanSwitch(identity, 1000));
    expect(err.field).toBe('privileges.user');
    expect(err.message).toContain('it runs as uid 1000');
  });

  it('reads uid, gid, groups and capabilities from a /proc status', () => {
    const status =
      'Name:\tnode\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t65534 120 \nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n';
    expect(readCredentials(status)).toEqual({
      uid: 65534,
      gid: 65534,
      groups: [65534, 120],
      capEff: '0000000000000000',
      capPrm: '0000000000000000',
    });
  });

  it('`colo-proxy run` with an unknown user exits 2 naming privileges.user before opening any interface', async () => {
    const run = promisify(execFile);
    const args = ['bin/colo-proxy.js', 'run', '--config', file(minimal), '--privileges-user', 'colo_no_such_user'];
    const failure = await run(process.execPath, args, { timeout: 30_000 }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain('config field "privileges.user"');
    expect(failure?.stderr).toContain('colo_no_such_user');
    // The interfaces do not exist: reaching the offload check would have named colonoif0 instead.
    expect(failure?.stderr).not.toContain('colonoif0');
  }, 40_000);
});
