import { z } from 'zod';
import { parseControlAddress } from '../lab/control-protocol.js';
import { parseListenAddress } from '../stats/server.js';
import { checkDriverForRole, checkpointConfigSchema } from './checkpoint.js';
import { ConfigError } from './errors.js';
import { loadConfig, type FlagSpec } from './load.js';
import { passthroughListSchema } from './passthrough.js';
import { protectionFlags, protectionSchema } from './protection-mode.js';

/**
 * `colo-proxy run --config FILE`: the inline proxy's configuration. Every field is documented in
 * docs/inline.md; errors name the dotted field and what it expects (src/config/load.ts).
 */

const count = (what: string, fallback: number) =>
  z
    .number({ error: `${what} (a positive integer)` })
    .int({ error: `${what} (a positive integer)` })
    .positive({ error: `${what} (a positive integer)` })
    .default(fallback);

const ifaceText = 'an interface name (1 to 15 characters, no "/" or whitespace)';
const iface = z.string({ error: ifaceText }).regex(/^[^\s/:]{1,15}$/, { error: ifaceText });

const filePath = (what: string) => z.string({ error: what }).min(1, { error: what });

const metricsText = 'PORT, HOST:PORT or [IPV6]:PORT with PORT in 0..65535';
/** A bare port may be a YAML integer (`metrics: 9464`): it is read as the string it stands for. */
const metricsAddress = z.preprocess(
  (value) => (typeof value === 'number' ? String(value) : value),
  z.string({ error: metricsText }).refine(
    (text) => {
      try {
        parseListenAddress(text);
        return true;
      } catch {
        return false;
      }
    },
    { error: metricsText },
  ),
);

/** A user or group as a name or a numeric id; a YAML integer (`user: 65534`) stays a number. */
const accountId = (what: 'user' | 'group', id: 'uid' | 'gid') => {
  const text = `a ${what} name (letters, digits, "_", "-", ".") or a numeric ${id}`;
  return z.union(
    [
      z.number().int({ error: text }).nonnegative({ error: text }).max(0xfffffffe, { error: text }),
      z
        .string()
        .regex(/^(\d+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/)
        .transform((value) => (/^\d+$/.test(value) ? Number(value) : value)),
    ],
    { error: text },
  );
};

/** `colo-proxy run`'s flags: each is its field's path in kebab-case (the rule of src/config/checkpoint-flags.ts). */
export const runFlags: readonly FlagSpec[] = [
  { flag: '--privileges-user <user>', path: 'privileges.user', description: 'become this user once capture is open' },
  {
    flag: '--privileges-group <group>',
    path: 'privileges.group',
    description: "with --privileges-user: this group instead of the user's own",
  },
  ...protectionFlags,
];

const controlText = 'the lab guest control socket: a unix socket path, unix:PATH or tcp:HOST:PORT';

/**
 * How the proxy learns that the primary VM is gone (then it fails over to the secondary). A check that
 * fails `failures` times in a row, `intervalMs` apart, declares the primary lost.
 */
const healthBase = {
  intervalMs: count('milliseconds between health checks', 500),
  failures: count('consecutive failed checks that mean the primary is lost', 3),
  timeoutMs: count('milliseconds one check may take before it counts as failed', 1000),
};

export const primaryHealthSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('none') }),
    z.strictObject({
      kind: z.literal('lab'),
      control: z.string({ error: controlText }).refine((text) => parseControlAddress(text) !== null, {
        error: controlText,
      }),
      ...healthBase,
    }),
    z.strictObject({
      kind: z.literal('exec'),
      command: z
        .string({ error: 'a shell command that exits 0 while the primary VM is alive' })
        .min(1, { error: 'a shell command that exits 0 while the primary VM is alive' }),
      ...healthBase,
    }),
    z.strictObject({
      kind: z.literal('qemu'),
      qmp: filePath("a QMP socket path of the primary VM's own (not the driver's: QEMU serves one client per socket)"),
      ...healthBase,
    }),
  ],
  { error: 'a health check mapping whose kind is "none", "lab", "exec" or "qemu"' },
);

export const inlineConfigSchema = z
  .strictObject({
    interfaces: z.strictObject(
      { client: iface, primary: iface, secondary: iface },
      { error: 'a mapping of client, primary and secondary interface names' },
    ),
    checkpoint: checkpointConfigSchema,
    compare: z
      .strictObject(
        {
          compareTimeoutMs: count('milliseconds a frame may wait for its peer (compare_timeout)', 3000),
          expiredScanCycleMs: count('milliseconds between stale-frame scans (expired_scan_cycle)', 1000),
          maxQueueSize: count('frames held per connection per side (max_queue_size)', 1024),
          maxConnections: count('connections tracked by the comparison', 16384),
        },
        { error: 'a mapping of compareTimeoutMs, expiredScanCycleMs, maxQueueSize, maxConnections' },
      )
      .prefault({}),
    rewriter: z
      .strictObject(
        {
          resetOffsetsOnCheckpoint: z.boolean({ error: 'true or false' }).default(true),
          maxHeldPerConnection: count('client frames held per connection until the secondary ISN is known', 256),
          maxConnections: count('connections the rewriter tracks', 65536),
          lingerMs: count('milliseconds a closed connection is remembered', 5000),
          idleMs: count('milliseconds after which an idle connection is forgotten', 600_000),
        },
        {
          error: 'a mapping of resetOffsetsOnCheckpoint, maxHeldPerConnection, maxConnections, lingerMs, idleMs',
        },
      )
      .prefault({}),
    gate: z
      .strictObject(
        { maxHeldFrames: count('primary frames the output gate holds during a checkpoint', 65536) },
        { error: 'a mapping with maxHeldFrames' },
      )
      .prefault({}),
    mirror: z
      .strictObject(
        { maxHeldIngress: count('client frames held for both VMs during a checkpoint', 16384) },
        { error: 'a mapping with maxHeldIngress' },
      )
      .prefault({}),
    capture: z
      .enum(['ring', 'pcap'], {
        error: 'ring (the AF_PACKET addon, native/packet-ring) or pcap (libpcap through the cap package)',
      })
      .optional(),
    captureBufferFrames: count('frames the kernel capture ring holds per interface', 1024),
    mtu: z
      .number({ error: 'the link MTU in bytes (an integer from 68 to 65535)' })
      .int({ error: 'the link MTU in bytes (an integer from 68 to 65535)' })
      .min(68, { error: 'the link MTU in bytes (an integer from 68 to 65535)' })
      .max(65535, { error: 'the link MTU in bytes (an integer from 68 to 65535)' })
      .default(1500),
    offloadCheck: z.boolean({ error: 'true or false' }).default(true),
    metrics: metricsAddress.optional(),
    events: filePath('a path for the NDJSON event log').optional(),
    divergences: filePath('a path for the pcapng file of diverging packet pairs')
      .refine((text) => /\.pcapng$/.test(text), { error: 'a path ending in .pcapng' })
      .optional(),
    primaryHealth: primaryHealthSchema.prefault({ kind: 'none' }),
    /** Flows released without comparison (compare/passthrough.ts); `--passthrough RULE` adds to them. */
    passthrough: passthroughListSchema.default([]),
    /** compare, periodic or hybrid, and hybrid's thresholds (compare/protection-mode.ts). */
    protection: protectionSchema.prefault({}),
    /** Who `run` becomes once its sockets and files are open (src/inline/privileges.ts); absent: it stays root. */
    privileges: z
      .strictObject(
        { user: accountId('user', 'uid'), group: accountId('group', 'gid').optional() },
        { error: 'a mapping with user and optionally group (names or numeric ids)' },
      )
      .optional(),
  })
  .superRefine((config, ctx) => {
    // QEMU serves one client per QMP socket: a probe queued behind the driver's connection would never be
    // answered, and the primary would be declared lost while it runs.
    const health = config.primaryHealth as { kind?: unknown; qmp?: unknown } | undefined;
    const driver = (config.checkpoint as { driver?: { kind?: unknown; qmp?: unknown } } | undefined)?.driver;
    if (health?.kind === 'qemu' && driver?.kind === 'qemu' && health.qmp === driver.qmp) {
      ctx.addIssue({
        code: 'custom',
        path: ['primaryHealth', 'qmp'],
        message: `a QMP socket other than checkpoint.driver.qmp (${String(driver.qmp)}): give the VM a second -qmp`,
      });
    }
    const ifaces = config.interfaces as Partial<Record<string, unknown>> | undefined;
    if (!ifaces || typeof ifaces !== 'object') return;
    const names = ['client', 'primary', 'secondary'] as const;
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        if (ifaces[names[i]] !== undefined && ifaces[names[i]] === ifaces[names[j]]) {
          ctx.addIssue({
            code: 'custom',
            path: ['interfaces', names[j]],
            message: `an interface other than interfaces.${names[i]} (${String(ifaces[names[i]])})`,
          });
        }
      }
    }
  });

export type InlineConfig = z.output<typeof inlineConfigSchema>;
export type PrimaryHealthConfig = z.output<typeof primaryHealthSchema>;

/** Reads and validates the YAML file; throws ConfigError naming the first bad field. */
export function loadInlineConfig(file: string, flags: Record<string, unknown> = {}): InlineConfig {
  const config = loadConfig(inlineConfigSchema, { file, flags, flagSpecs: runFlags });
  try {
    checkDriverForRole(config.checkpoint, 'primary');
  } catch (err) {
    // The driver check names fields relative to the checkpoint section; this file nests it.
    if (err instanceof ConfigError) throw new ConfigError(`checkpoint.${err.field}`, err.expected, err.received);
    throw err;
  }
  return config;
}
