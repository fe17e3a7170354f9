import { isPlainObject, mergeOver, type FlagSpec } from './load.js';

/**
 * The checkpoint config on the command line: a flag per field (mostly its path in kebab-case), and how
 * flags are laid over the YAML file. loadCheckpointConfig (src/config/checkpoint.ts) uses both.
 */

const integer = (raw: string): unknown => (/^\d+$/.test(raw.trim()) ? Number(raw) : raw);
const withPrefix = (mode: 'listen' | 'connect') => (raw: string) =>
  /^(listen|connect):/.test(raw) ? raw : `${mode}:${raw}`;

/** Every config field as a flag, for commander (declareFlags) and for loadCheckpointConfig. */
export const checkpointFlags: readonly FlagSpec[] = [
  {
    flag: '--listen <address>',
    path: 'endpoint',
    parse: withPrefix('listen'),
    description: 'listen for the peer: [listen:]HOST:PORT or [listen:]unix:PATH',
  },
  {
    flag: '--connect <address>',
    path: 'endpoint',
    parse: withPrefix('connect'),
    description: 'connect to the peer: [connect:]HOST:PORT or [connect:]unix:PATH',
  },
  { flag: '--plaintext', path: 'plaintext', description: 'run the control channel without TLS (a warning is logged)' },
  { flag: '--tls-ca <file>', path: 'tls.ca', description: 'PEM CA certificate that signs the peer' },
  { flag: '--tls-cert <file>', path: 'tls.cert', description: "this node's PEM certificate" },
  { flag: '--tls-key <file>', path: 'tls.key', description: "this node's PEM private key" },
  {
    flag: '--max-state-bytes <bytes>',
    path: 'maxStateBytes',
    parse: integer,
    formerly: ['--max-state-size'],
    description: 'largest VM state accepted, e.g. 512MiB (default 1GiB)',
  },
  {
    flag: '--wait-ms <ms>',
    path: 'timeouts.waitMs',
    parse: integer,
    formerly: ['--wait-timeout'],
    description: 'longest wait for a promptly answered sync point (default 3000)',
  },
  {
    flag: '--transfer-ms <ms>',
    path: 'timeouts.transferMs',
    parse: integer,
    formerly: ['--transfer-timeout'],
    description: 'longest wait for the state transfer, SEND to RECEIVED (default 60000)',
  },
  {
    flag: '--load-ms <ms>',
    path: 'timeouts.loadMs',
    parse: integer,
    formerly: ['--load-wait-timeout'],
    description: 'longest wait for the secondary to load, RECEIVED to LOADED (default 30000)',
  },
  {
    flag: '--connect-ms <ms>',
    path: 'timeouts.connectMs',
    parse: integer,
    formerly: ['--connect-timeout'],
    description: 'longest wait for one connection attempt (default 3000)',
  },
  {
    flag: '--handshake-ms <ms>',
    path: 'timeouts.handshakeMs',
    parse: integer,
    description: 'longest a TLS handshake may take on a listening side before it is closed (default 10000)',
  },
  {
    flag: '--retry-ms <ms>',
    path: 'timeouts.retryMs',
    parse: integer,
    description: 'first wait before a dialling side tries to connect again; doubles up to --max-retry-ms (default 100)',
  },
  {
    flag: '--max-retry-ms <ms>',
    path: 'timeouts.maxRetryMs',
    parse: integer,
    description: 'longest wait between connection attempts (default 2000)',
  },
  {
    flag: '--heartbeat-interval-ms <ms>',
    path: 'timeouts.heartbeatIntervalMs',
    parse: integer,
    formerly: ['--heartbeat-interval'],
    description: 'idle heartbeat interval (default 500)',
  },
  {
    flag: '--heartbeat-loss-ms <ms>',
    path: 'timeouts.heartbeatLossMs',
    parse: integer,
    formerly: ['--heartbeat-timeout'],
    description: 'heartbeat silence that means the peer is lost (default 3000)',
  },
  { flag: '--driver-kind <kind>', path: 'driver.kind', formerly: ['--driver'], description: 'VM driver: exec or lab' },
  {
    flag: '--driver-suspend <cmd>',
    path: 'driver.suspend',
    formerly: ['--exec-suspend'],
    implies: { 'driver.kind': 'exec' },
    description: 'shell command that suspends the VM',
  },
  {
    flag: '--driver-save <cmd>',
    path: 'driver.save',
    formerly: ['--exec-save'],
    implies: { 'driver.kind': 'exec' },
    description: 'shell command that writes the VM state on stdout',
  },
  {
    flag: '--driver-load <cmd>',
    path: 'driver.load',
    formerly: ['--exec-load'],
    implies: { 'driver.kind': 'exec' },
    description: 'shell command that reads the VM state on stdin',
  },
  {
    flag: '--driver-resume <cmd>',
    path: 'driver.resume',
    formerly: ['--exec-resume'],
    implies: { 'driver.kind': 'exec' },
    description: 'shell command that resumes the VM',
  },
  {
    flag: '--driver-control <address>',
    path: 'driver.control',
    formerly: ['--lab-control'],
    implies: { 'driver.kind': 'lab' },
    description: 'lab guest control socket (path, unix:PATH or tcp:HOST:PORT)',
  },
  {
    flag: '--driver-suspend-ms <ms>',
    path: 'driver.timeouts.suspendMs',
    parse: integer,
    formerly: ['--suspend-timeout'],
    description: 'suspend hook timeout',
  },
  {
    flag: '--driver-save-ms <ms>',
    path: 'driver.timeouts.saveMs',
    parse: integer,
    formerly: ['--save-timeout'],
    description: 'save hook timeout',
  },
  {
    flag: '--driver-load-ms <ms>',
    path: 'driver.timeouts.loadMs',
    parse: integer,
    formerly: ['--load-timeout'],
    description: 'load hook timeout',
  },
  {
    flag: '--driver-resume-ms <ms>',
    path: 'driver.timeouts.resumeMs',
    parse: integer,
    formerly: ['--resume-timeout'],
    description: 'resume hook timeout',
  },
];

/**
 * Flags win over the file, including where a flag replaces a whole choice: a driver kind different from
 * the file's replaces the file's driver section, --plaintext drops the file's tls, a tls flag drops the
 * file's plaintext.
 */
export function preferFlags(
  file: Record<string, unknown>,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  const base = { ...file };
  const fileDriver = base.driver;
  const flagDriver = overrides.driver;
  if (isPlainObject(fileDriver) && isPlainObject(flagDriver) && flagDriver.kind !== undefined) {
    if (fileDriver.kind !== undefined && flagDriver.kind !== fileDriver.kind) delete base.driver;
  }
  if (overrides.plaintext === true) delete base.tls;
  if (overrides.tls !== undefined) delete base.plaintext;
  return mergeOver(base, overrides) as Record<string, unknown>;
}
