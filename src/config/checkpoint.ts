import { z } from 'zod';
import { parseMigrationUri } from '../checkpoint/drivers/qemu-migration.js';
import type { ControlSecurity } from '../checkpoint/tls.js';
import { parseEndpoint, type Endpoint } from '../checkpoint/transport.js';
import { parseControlAddress } from '../lab/control-protocol.js';
import { checkpointFlags, preferFlags } from './checkpoint-flags.js';
import { ConfigError } from './errors.js';
import { loadConfig } from './load.js';

/**
 * The checkpoint engine's configuration, for both roles (primary: coordinator; secondary: agent).
 * Every field is documented in docs/configuration.md; each but checkpointTimerMs (read only by `run`) and
 * the qemu driver's (YAML only: a QEMU command line is a list) has a flag that overrides it, in
 * checkpointFlags (src/config/checkpoint-flags.ts).
 */

export type Role = 'primary' | 'secondary';

/** The protocol's own parser (src/checkpoint/transport.ts) decides; it throws on a bad address. */
function isEndpoint(text: string): boolean {
  try {
    parseEndpoint(text, 'endpoint');
    return true;
  } catch {
    return false;
  }
}

const endpointText = 'listen:HOST:PORT, connect:HOST:PORT, listen:unix:PATH or connect:unix:PATH';
const msText = (what: string): string => `${what} in milliseconds (a positive integer)`;
const ms = (what: string, fallback: number) =>
  z
    .number({ error: msText(what) })
    .int({ error: msText(what) })
    .positive({ error: msText(what) })
    .default(fallback);

const path = (what: string) => z.string({ error: what }).min(1, { error: what });

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/;
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
};

/** 67108864, "64MiB", "1GiB", "1.5GB": a byte count; null when it is not one. */
export function parseSize(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null;
  if (typeof value !== 'string') return null;
  const match = SIZE.exec(value.trim());
  if (!match) return null;
  const bytes = Math.floor(Number(match[1]) * SIZE_UNITS[match[2] ?? 'B']);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : null;
}

const sizeText = 'a size in bytes: a positive integer or a string like "64MiB" or "1GiB"';
const size = (fallback: number) =>
  z
    .union([z.number(), z.string()], { error: sizeText })
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === null) ctx.addIssue({ code: 'custom', message: sizeText });
      return bytes ?? 0;
    })
    .default(fallback);

const shell = (hook: string) =>
  z.string({ error: `a shell command string (the ${hook} hook)` }).min(1, {
    error: `a non-empty shell command string (the ${hook} hook)`,
  });

const hookTimeouts = (defaults: { suspendMs: number; saveMs: number; loadMs: number; resumeMs: number }) =>
  z
    .strictObject(
      {
        suspendMs: ms('the suspend hook timeout', defaults.suspendMs),
        saveMs: ms('the save hook timeout', defaults.saveMs),
        loadMs: ms('the load hook timeout', defaults.loadMs),
        resumeMs: ms('the resume hook timeout', defaults.resumeMs),
      },
      { error: 'a mapping of suspendMs, saveMs, loadMs, resumeMs' },
    )
    .prefault({});

export const execDriverSchema = z.strictObject({
  kind: z.literal('exec'),
  suspend: shell('suspend').optional(),
  save: shell('save').optional(),
  load: shell('load').optional(),
  resume: shell('resume').optional(),
  timeouts: hookTimeouts({ suspendMs: 10_000, saveMs: 60_000, loadMs: 60_000, resumeMs: 10_000 }),
});

export const labDriverSchema = z.strictObject({
  kind: z.literal('lab'),
  control: z
    .string({ error: 'the lab guest control socket: a unix socket path, unix:PATH or tcp:HOST:PORT' })
    .refine((text) => parseControlAddress(text) !== null, {
      error: 'the lab guest control socket: a unix socket path, unix:PATH or tcp:HOST:PORT',
    }),
  timeouts: hookTimeouts({ suspendMs: 5_000, saveMs: 30_000, loadMs: 30_000, resumeMs: 5_000 }),
});

const migrationUriText = 'a migration address: tcp:HOST:PORT or unix:PATH';
const migrationUri = z
  .string({ error: migrationUriText })
  .refine((text) => parseMigrationUri(text) !== null, { error: migrationUriText });
const tapText = 'a tap name (1 to 15 characters, no "/", ":" or whitespace)';
const commandText = 'the secondary QEMU command line: a list of argument strings, with {tap} where the tap name goes';

/** Where the qemu driver keeps its sockets unless told otherwise: a runtime directory of colo-proxy's. */
export const defaultQemuWorkDir = '/run/colo-proxy/qemu';

export const qemuDriverSchema = z.strictObject({
  kind: z.literal('qemu'),
  qmp: path("the primary VM's QMP socket path").optional(),
  command: z
    .array(z.string({ error: 'a QEMU argument (a string)' }), { error: commandText })
    .min(1, { error: commandText })
    .refine((args) => args.some((arg) => arg.includes('{tap}')), { error: commandText })
    .optional(),
  taps: z
    .array(z.string({ error: tapText }).regex(/^[^\s/:]{1,15}$/, { error: tapText }), {
      error: 'a list of one or two tap names',
    })
    .min(1, { error: 'a list of one or two tap names' })
    .max(2, { error: 'a list of one or two tap names' })
    .optional(),
  workDir: path("a directory for the driver's sockets").default(defaultQemuWorkDir),
  maxBandwidth: size(20e9),
  downtimeLimitMs: z
    .number({ error: 'milliseconds (a non-negative integer)' })
    .int({ error: 'milliseconds (a non-negative integer)' })
    .nonnegative({ error: 'milliseconds (a non-negative integer)' })
    .default(0),
  precopy: z
    .strictObject(
      {
        uri: migrationUri,
        maxMs: ms('the longest pre-copy before the guest is stopped all the same', 3_000),
        stopAtRemainingBytes: size(4 * 2 ** 20),
      },
      { error: 'a mapping of uri, maxMs and stopAtRemainingBytes' },
    )
    .optional(),
  incoming: migrationUri.optional(),
  timeouts: hookTimeouts({ suspendMs: 10_000, saveMs: 60_000, loadMs: 60_000, resumeMs: 10_000 }),
});

export const driverSchema = z.discriminatedUnion('kind', [execDriverSchema, labDriverSchema, qemuDriverSchema], {
  error: 'a driver mapping whose kind is "exec", "lab" or "qemu"',
});

export const checkpointConfigSchema = z
  .strictObject({
    endpoint: z.string({ error: endpointText }).refine(isEndpoint, { error: endpointText }),
    plaintext: z.boolean({ error: 'true or false' }).default(false),
    tls: z
      .strictObject(
        {
          ca: path('a path to the PEM CA certificate that signs the peer'),
          cert: path("a path to this node's PEM certificate"),
          key: path("a path to this node's PEM private key"),
        },
        { error: 'a mapping of ca, cert and key file paths' },
      )
      .optional(),
    checkpointTimerMs: ms('the checkpoint timer (CHKPOINT_TIMER)', 10_000),
    maxStateBytes: size(2 ** 30),
    timeouts: z
      .strictObject(
        {
          waitMs: ms('the longest wait for a promptly answered sync point', 3_000),
          transferMs: ms('the longest wait for the state transfer (SEND to RECEIVED)', 60_000),
          loadMs: ms('the longest wait for the secondary to load (RECEIVED to LOADED, and READY)', 30_000),
          connectMs: ms('the longest wait for one connection attempt', 3_000),
          handshakeMs: ms('the longest a TLS handshake may take on a listening side before it is closed', 10_000),
          retryMs: ms('the first wait before a dialling side tries again', 100),
          maxRetryMs: ms('the longest wait between connection attempts (the back-off doubles up to it)', 2_000),
          heartbeatIntervalMs: ms('the idle heartbeat interval', 500),
          heartbeatLossMs: ms('the heartbeat silence after which the peer is lost', 3_000),
        },
        {
          error:
            'a mapping of waitMs, transferMs, loadMs, connectMs, handshakeMs, retryMs, maxRetryMs, heartbeatIntervalMs, heartbeatLossMs',
        },
      )
      .prefault({}),
    driver: driverSchema,
  })
  .superRefine((config, ctx) => {
    // Runs even when a field above failed, so nothing here may assume a field has its parsed shape.
    if (config.plaintext === true && config.tls) {
      ctx.addIssue({ code: 'custom', path: ['plaintext'], message: 'either tls or plaintext: true, not both' });
    } else if (!config.plaintext && !config.tls) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: 'a tls mapping {ca, cert, key}, or plaintext: true to run the control channel unencrypted',
      });
    }
    const timeouts = config.timeouts as Partial<typeof config.timeouts> | null;
    if (timeouts?.heartbeatLossMs !== undefined && timeouts.heartbeatLossMs <= (timeouts.heartbeatIntervalMs ?? 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeouts', 'heartbeatLossMs'],
        message: `more than timeouts.heartbeatIntervalMs (${timeouts.heartbeatIntervalMs})`,
      });
    }
    if (timeouts?.maxRetryMs !== undefined && timeouts.maxRetryMs < (timeouts.retryMs ?? 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeouts', 'maxRetryMs'],
        message: `at least timeouts.retryMs (${timeouts.retryMs})`,
      });
    }
  });

export type CheckpointConfig = z.output<typeof checkpointConfigSchema>;
export type DriverConfig = z.output<typeof driverSchema>;
export type ExecDriverConfig = z.output<typeof execDriverSchema>;
export type LabDriverConfig = z.output<typeof labDriverSchema>;
export type QemuDriverConfig = z.output<typeof qemuDriverSchema>;

/** The exec hooks each role calls: the primary saves, the secondary loads; both suspend and resume. */
export const hooksNeeded: Record<Role, ReadonlyArray<'suspend' | 'save' | 'load' | 'resume'>> = {
  primary: ['suspend', 'save', 'resume'],
  secondary: ['suspend', 'load', 'resume'],
};

/**
 * Throws ConfigError naming the first field the role needs that the driver lacks: the exec hooks it calls,
 * or the qemu driver's own fields (the primary reaches a VM through qmp; the secondary starts its own).
 */
export function checkDriverForRole(config: CheckpointConfig, role: Role): void {
  const driver = config.driver;
  if (driver.kind === 'exec') {
    for (const hook of hooksNeeded[role]) {
      if (driver[hook] === undefined) {
        throw new ConfigError(
          `driver.${hook}`,
          `a shell command string (the ${role} runs the ${hook} hook)`,
          undefined,
        );
      }
    }
  }
  if (driver.kind === 'qemu') checkQemuForRole(driver, role);
}

function checkQemuForRole(driver: QemuDriverConfig, role: Role): void {
  const misplaced = (field: string, why: string, value: unknown): never => {
    throw new ConfigError(`driver.${field}`, `no ${field} on the ${role} (${why})`, value);
  };
  if (role === 'primary') {
    if (driver.qmp === undefined) {
      throw new ConfigError(
        'driver.qmp',
        "the primary VM's QMP socket path (the primary's qemu driver needs it)",
        undefined,
      );
    }
    const why = 'the secondary starts its own QEMU; the primary reaches its VM through driver.qmp';
    if (driver.command !== undefined) misplaced('command', why, driver.command);
    if (driver.taps !== undefined) misplaced('taps', why, driver.taps);
    if (driver.incoming !== undefined)
      misplaced('incoming', 'the primary pre-copies to driver.precopy.uri', driver.incoming);
    return;
  }
  if (driver.command === undefined) throw new ConfigError('driver.command', commandText, undefined);
  if (driver.taps === undefined) throw new ConfigError('driver.taps', 'a list of one or two tap names', undefined);
  if (driver.qmp !== undefined) misplaced('qmp', 'the secondary starts its own QEMU and QMP socket', driver.qmp);
  if (driver.precopy !== undefined) {
    misplaced('precopy', 'the secondary waits for a pre-copy at driver.incoming', driver.precopy);
  }
  if (driver.incoming !== undefined && driver.taps.length !== 2) {
    throw new ConfigError(
      'driver.taps',
      'two tap names when driver.incoming is set (the standby QEMU needs its own)',
      driver.taps,
    );
  }
}

/**
 * Reads the optional YAML file, applies the flags (commander's opts() for checkpointFlags; dotted config
 * paths are accepted too), validates, and, when a role is given, checks the driver fields it needs.
 */
export function loadCheckpointConfig(
  file: string | undefined,
  flags: Record<string, unknown>,
  role?: Role,
): CheckpointConfig {
  const config = loadConfig(checkpointConfigSchema, { file, flags, flagSpecs: checkpointFlags, prepare: preferFlags });
  if (role !== undefined) checkDriverForRole(config, role);
  return config;
}

/** The control channel's endpoint, parsed for listenControl/connectControl. */
export function checkpointEndpoint(config: CheckpointConfig): Endpoint {
  return parseEndpoint(config.endpoint, 'endpoint');
}

/** The control channel's security, for loadControlSecurity. */
export function checkpointSecurity(config: CheckpointConfig): ControlSecurity {
  return config.tls ? { kind: 'tls', ...config.tls } : { kind: 'plaintext' };
}
