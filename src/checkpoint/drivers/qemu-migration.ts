import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { DriverError, type DriverHook } from '../driver.js';
import { QmpConnectionError, QmpError, type QmpClient, type QmpEvent } from '../qmp.js';

/**
 * What both roles of the qemu driver share: migration settings, waiting on a migration's status, writing a
 * state into an incoming QEMU, and the errors that name the QMP command and QEMU's answer.
 */

export interface QemuTimeouts {
  suspendMs: number;
  saveMs: number;
  loadMs: number;
  resumeMs: number;
}

export const defaultQemuTimeouts: QemuTimeouts = {
  suspendMs: 10_000,
  saveMs: 60_000,
  loadMs: 60_000,
  resumeMs: 10_000,
};

export interface MigrationSettings {
  /** Bytes per second. QEMU's own default (128 MiB/s) would be most of the pause. */
  maxBandwidth: number;
  /** How long QEMU may stop the guest on its own to finish a pre-copy. */
  downtimeLimitMs: number;
}

export const defaultMigrationSettings: MigrationSettings = { maxBandwidth: 20e9, downtimeLimitMs: 0 };

/** query-migrate's answer, as far as the driver reads it. */
export interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
  ram?: { transferred?: number; remaining?: number; total?: number };
}

const FAILED = new Set(['failed', 'cancelled']);
/** Statuses in which the source has stopped the guest itself to send the last pages and the devices. */
export const SWITCHING_OVER = new Set(['device', 'pre-switchover', 'completed']);

/** events: MIGRATION events wake the waits below, so a completed migration is seen without a busy poll. */
export async function prepareMigration(qmp: QmpClient, settings: MigrationSettings, timeoutMs: number): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] }, timeoutMs);
  await qmp.execute(
    'migrate-set-parameters',
    { 'max-bandwidth': settings.maxBandwidth, 'downtime-limit': settings.downtimeLimitMs },
    timeoutMs,
  );
}

/** The migration ended as failed or cancelled: `status` and QEMU's `error-desc`. */
export class MigrationFailed extends Error {
  constructor(
    readonly status: string,
    readonly desc: string,
  ) {
    super(`migration ${status}${desc === '' ? '' : `: ${desc}`}`);
    this.name = 'MigrationFailed';
  }
}

export interface WaitOptions {
  /** Absolute deadline (performance.now()). */
  deadline: number;
  /** Query at least this often; a MIGRATION event queries at once. */
  pollMs: number;
  /** What the wait is for, in the timeout's message. */
  what: string;
}

/**
 * Queries the migration until `done(info)` holds; rejects with MigrationFailed on failed/cancelled, or on
 * the deadline with a QmpConnectionError('timeout') naming the last status seen.
 */
export async function waitForMigration(
  qmp: QmpClient,
  done: (info: MigrationInfo) => boolean,
  options: WaitOptions,
): Promise<MigrationInfo> {
  let wake: (() => void) | null = null;
  // An event may come in the same read as a query's reply, before the wait below is set up: remember it.
  let eventSeen = false;
  const onEvent = (event: QmpEvent): void => {
    if (event.event !== 'MIGRATION') return;
    eventSeen = true;
    wake?.();
  };
  qmp.on('event', onEvent);
  try {
    let status = 'unknown';
    for (;;) {
      const left = options.deadline - performance.now();
      if (left <= 0) {
        throw new QmpConnectionError('timeout', `${options.what}: still ${status} at the deadline`);
      }
      eventSeen = false;
      const info = await qmp.execute<MigrationInfo>('query-migrate', undefined, left);
      status = info.status ?? 'none';
      if (FAILED.has(status)) throw new MigrationFailed(status, info['error-desc'] ?? '');
      if (done(info)) return info;
      if (eventSeen) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(options.pollMs, Math.max(0, left)));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    qmp.off('event', onEvent);
  }
}

export const isCompleted = (info: MigrationInfo): boolean => info.status === 'completed';

/** A migration address: unix:PATH or tcp:HOST:PORT, as QEMU spells it. */
export type MigrationAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseMigrationUri(uri: string): MigrationAddress | null {
  if (uri.startsWith('unix:')) return uri.length > 5 ? { kind: 'unix', path: uri.slice(5) } : null;
  const tcp = /^tcp:(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(uri);
  if (!tcp) return null;
  const port = Number(tcp[2]);
  if (port < 1 || port > 65535) return null;
  return { kind: 'tcp', host: tcp[1].replace(/^\[|\]$/g, ''), port };
}

const STATE_SLICE = 1 << 20;

/**
 * Streams a state into an incoming QEMU's migration socket, in slices (views, no copy) paced by the
 * socket's backpressure. The returned socket is destroyed on failure; nothing keeps `state` after that.
 */
export async function writeState(address: MigrationAddress, state: Buffer, deadline: number): Promise<void> {
  const host = address.kind === 'tcp' && (address.host === '0.0.0.0' || address.host === '::') ? '127.0.0.1' : null;
  const socket: Socket =
    address.kind === 'unix'
      ? connect({ path: address.path })
      : connect({ host: host ?? address.host, port: address.port });
  const left = (): number => Math.max(1, deadline - performance.now());
  const timer = setTimeout(() => socket.destroy(new Error('timed out writing the state')), left());
  try {
    await once(socket, 'connect');
    for (let offset = 0; offset < state.length; offset += STATE_SLICE) {
      if (!socket.write(state.subarray(offset, offset + STATE_SLICE))) await once(socket, 'drain');
    }
    socket.end();
    await once(socket, 'finish');
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The DriverError for a failed step: QMP errors name the command and QEMU's answer already. */
export function driverError(hook: DriverHook, role: string, err: unknown, detail?: string): DriverError {
  const error = err as Error;
  const timedOut = error instanceof QmpConnectionError && error.reason === 'timeout';
  const text = detail ?? error.message;
  const stderr = error instanceof QmpError ? error.desc : '';
  return new DriverError(hook, `qemu driver (${role}): ${hook} failed: ${text}`, null, stderr, timedOut);
}
