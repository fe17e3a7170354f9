import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';

/**
 * Least privilege for `colo-proxy run`: once the capture sockets, the listening sockets and the output files
 * are open, the process becomes an ordinary user. An AF_PACKET socket keeps working after that (the kernel
 * checks CAP_NET_RAW when the socket is opened, not on each send or receive); what is opened later (sockets
 * it dials, hooks it spawns) is opened as that user. docs/inline.md, "Privileges", says what it must own.
 */

/** The `privileges` config section: a user and group as names or numeric ids. */
export interface PrivilegesConfig {
  user: string | number;
  group?: string | number;
}

/** Who the process becomes. `name`: the passwd name, for the user's supplementary groups (null: uid only). */
export interface Identity {
  readonly name: string | null;
  readonly uid: number;
  readonly gid: number;
  readonly groupName: string | null;
}

/** One `getent DATABASE KEY` answer split on ':', or null when there is no such entry. */
export type Lookup = (database: 'passwd' | 'group', key: string) => string[] | null;

/** getent, not /etc/passwd: users from LDAP or systemd-userdb resolve too (through NSS). */
export const getent: Lookup = (database, key) => {
  try {
    const line = execFileSync('getent', [database, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return line.split('\n')[0].split(':');
  } catch {
    return null;
  }
};

const isId = (value: string | number): boolean => typeof value === 'number' || /^\d+$/.test(value);

/**
 * Resolves the configured user and group to ids. The group defaults to the user's primary group. Throws a
 * ConfigError naming privileges.user or privileges.group for one that does not exist; a numeric uid without
 * a passwd entry is accepted when the group is given.
 */
export function resolveIdentity(config: PrivilegesConfig, lookup: Lookup = getent): Identity {
  const user = String(config.user);
  const entry = lookup('passwd', user);
  if (entry === null && !isId(config.user))
    throw new ConfigError('privileges.user', 'a user that exists on this host (a name or a numeric uid)', config.user);
  const uid = entry === null ? Number(user) : Number(entry[2]);
  const name = entry === null ? null : entry[0];
  if (config.group === undefined) {
    if (entry === null)
      throw new ConfigError('privileges.group', `a group, since uid ${uid} has no passwd entry to take one from`, null);
    const gid = Number(entry[3]);
    return { name, uid, gid, groupName: lookup('group', String(gid))?.[0] ?? null };
  }
  const group = String(config.group);
  const groupEntry = lookup('group', group);
  if (groupEntry === null && !isId(config.group))
    throw new ConfigError(
      'privileges.group',
      'a group that exists on this host (a name or a numeric gid)',
      config.group,
    );
  return {
    name,
    uid,
    gid: groupEntry === null ? Number(group) : Number(groupEntry[2]),
    groupName: groupEntry?.[0] ?? null,
  };
}

/**
 * Refuses a configuration this process cannot carry out: switching to another user needs root. Starting as
 * the configured user already is accepted (nothing to drop).
 */
export function checkCanSwitch(identity: Identity, uid = process.getuid?.() ?? 0): void {
  if (uid === 0 || uid === identity.uid) return;
  throw new ConfigError(
    'privileges.user',
    `a user this process can switch to: it runs as uid ${uid}, and only root may become uid ${identity.uid}`,
    identity.name ?? identity.uid,
  );
}

/** What the process is after a drop, from /proc/self/status: a log line and a test read it. */
export interface Credentials {
  uid: number;
  gid: number;
  groups: number[];
  capEff: string;
  capPrm: string;
}

export function readCredentials(status = readFileSync('/proc/self/status', 'utf8')): Credentials {
  const field = (name: string): string => status.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1].trim() ?? '';
  return {
    uid: Number(field('Uid').split(/\s+/)[0]),
    gid: Number(field('Gid').split(/\s+/)[0]),
    groups: field('Groups')
      .split(/\s+/)
      .filter((g) => g !== '')
      .map(Number),
    capEff: field('CapEff'),
    capPrm: field('CapPrm'),
  };
}

/**
 * Becomes `identity` for good. Order matters: supplementary groups and the gid can only be set while still
 * root, so setuid comes last. A root process that sets every uid to a non-zero one loses all its
 * capabilities, effective and permitted; the final setuid(0) proves there is no way back.
 */
export function dropPrivileges(identity: Identity): Credentials {
  // initgroups keeps the user's supplementary groups (libvirt, kvm: what hooks may need); @types/node lacks it.
  const { initgroups } = process as unknown as { initgroups: (user: string, extraGroup: number) => void };
  if (identity.name !== null) initgroups(identity.name, identity.gid);
  else process.setgroups!([identity.gid]);
  process.setgid!(identity.gid);
  process.setuid!(identity.uid);
  let regained = false;
  try {
    process.setuid!(0);
    regained = identity.uid !== 0;
  } catch {
    // EPERM: the drop is final.
  }
  if (regained) throw new Error(`privileges: setuid(0) succeeded after dropping to uid ${identity.uid}`);
  return readCredentials();
}

/**
 * Creates (mode 0700) and gives to `identity` a directory `run` creates files in after the drop (the qemu
 * driver's workDir: its state socket is made at the first checkpoint). Run while still root.
 */
export function handOverDirectory(path: string, identity: Identity): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chownSync(path, identity.uid, identity.gid);
}

/** "nobody (uid 65534), group nogroup (gid 65534)" for the startup log line. */
export function describeIdentity(identity: Identity): string {
  const user = identity.name === null ? `uid ${identity.uid}` : `${identity.name} (uid ${identity.uid})`;
  const group = identity.groupName === null ? `gid ${identity.gid}` : `${identity.groupName} (gid ${identity.gid})`;
  return `${user}, group ${group}`;
}
