import { constants } from 'node:buffer';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../../log.js';
import { DriverError, type DriverHook, type VmDriver } from '../driver.js';
import { QmpClient } from '../qmp.js';
import {
  defaultMigrationSettings,
  defaultQemuTimeouts,
  driverError,
  isCompleted,
  MigrationFailed,
  prepareMigration,
  SWITCHING_OVER,
  waitForMigration,
  type MigrationInfo,
  type MigrationSettings,
  type QemuTimeouts,
} from './qemu-migration.js';
import { StateSink } from './qemu-sink.js';

/**
 * The primary's qemu driver. The operator starts the VM; the driver reaches it through its QMP socket.
 * suspend = `stop`, save = a migration of the stopped VM into a socket of ours (the checkpoint stream),
 * resume = `cont`.
 *
 * Pre-copy mode (`precopy.uri`): suspend starts the migration straight into the secondary's standby QEMU
 * while the guest still runs, and stops the guest once little is left to copy (or at `precopy.maxMs`);
 * save waits for QEMU to finish and returns an empty state, since the state went QEMU to QEMU (SEND then
 * carries length 0).
 */

export interface PrecopyOptions {
  /** The secondary standby's incoming address: tcp:HOST:PORT or unix:PATH. */
  uri: string;
  /** The longest the guest runs during the pre-copy before it is stopped all the same. */
  maxMs: number;
  /** Stop the guest once this little RAM is left to send in the current pass. */
  stopAtRemainingBytes: number;
}

export interface QemuPrimaryOptions {
  /** The VM's QMP socket (started by the operator with `-qmp unix:PATH,server=on,wait=off`). */
  qmp: string;
  /** Where the driver's own migration socket goes. */
  workDir: string;
  migration?: Partial<MigrationSettings>;
  precopy?: PrecopyOptions;
  timeouts?: Partial<QemuTimeouts>;
  maxStateBytes?: number;
  logger?: Logger;
}

/** What the last checkpoint moved and what it cost, for logs and metrics. */
export interface QemuCheckpointFigures {
  mode: 'stream' | 'precopy';
  /** Bytes QEMU sent (query-migrate's ram.transferred). */
  transferredBytes: number;
  /** The guest ran this long while the pre-copy went on (0 in stream mode). */
  precopyMs: number;
  /** Guest stopped (by us or by QEMU) until the migration completed. */
  stopToCompleteMs: number;
  /** QEMU's own downtime figure. */
  qemuDowntimeMs: number;
}

const PRECOPY_POLL_MS = 2;
const SETTLE_POLL_MS = 1;
const COMPLETION_POLL_MS = 20;
const CONNECT_MS = 2000;
let serial = 0;

export class QemuPrimaryDriver implements VmDriver {
  readonly kind = 'qemu';
  readonly stats = { calls: 0, failures: 0, timeouts: 0, last: null as QemuCheckpointFigures | null };
  private readonly timeouts: QemuTimeouts;
  private readonly migration: MigrationSettings;
  private readonly log: Logger;
  private readonly sink: StateSink;
  private client: QmpClient | null = null;
  private stoppedAt = 0;
  private precopyMs = 0;

  constructor(private readonly options: QemuPrimaryOptions) {
    this.timeouts = { ...defaultQemuTimeouts, ...options.timeouts };
    this.migration = { ...defaultMigrationSettings, ...options.migration };
    this.log = options.logger ?? silentLogger;
    const maxBytes = Math.min(options.maxStateBytes ?? constants.MAX_LENGTH, constants.MAX_LENGTH);
    this.sink = new StateSink(join(options.workDir, `primary-${process.pid}-${serial++}.migrate`), maxBytes);
  }

  /** `stopping` is called when the driver starts stopping the guest: before `stop`, or before a pre-copy. */
  readonly announcesStop = true;

  suspend(stopping?: () => void): Promise<void> {
    return this.step('suspend', this.timeouts.suspendMs, async (qmp, deadline) => {
      if (this.options.precopy) return this.precopy(qmp, this.options.precopy, deadline, stopping);
      stopping?.();
      await qmp.execute('stop', undefined, deadline - performance.now());
      this.stoppedAt = performance.now();
      this.precopyMs = 0;
    });
  }

  save(): Promise<Buffer> {
    return this.step('save', this.timeouts.saveMs, async (qmp, deadline) => {
      if (this.options.precopy) {
        const info = await waitForMigration(qmp, isCompleted, {
          deadline,
          pollMs: COMPLETION_POLL_MS,
          what: `pre-copy to ${this.options.precopy.uri}`,
        }).catch(async (err: unknown) => {
          await cancelMigration(qmp);
          throw err;
        });
        this.record('precopy', info);
        await settledAfterMigration(qmp, deadline);
        return Buffer.alloc(0);
      }
      await this.sink.listen();
      let cancel: (err: Error) => void = () => undefined;
      const aborted = new Promise<never>((_resolve, reject) => (cancel = reject));
      aborted.catch(() => undefined);
      const captured = this.sink.capture(deadline, aborted);
      captured.catch(() => undefined);
      try {
        await qmp.execute('migrate', { uri: `unix:${this.sink.path}` }, deadline - performance.now());
        const completed = waitForMigration(qmp, isCompleted, {
          deadline,
          pollMs: COMPLETION_POLL_MS,
          what: `migration into ${this.sink.path}`,
        });
        completed.catch((err: Error) => cancel(err));
        const [state, info] = await Promise.all([captured, completed]);
        this.record('stream', info, state.length);
        await settledAfterMigration(qmp, deadline);
        return state;
      } catch (err) {
        cancel(err as Error);
        await cancelMigration(qmp);
        throw err;
      }
    });
  }

  /** The primary's VM is never loaded: the secondary's driver does that. */
  load(): Promise<void> {
    return Promise.reject(new DriverError('load', "qemu driver (primary): load is the secondary role's call"));
  }

  resume(): Promise<void> {
    return this.step('resume', this.timeouts.resumeMs, async (qmp, deadline) => {
      await qmp.execute('cont', undefined, deadline - performance.now());
    });
  }

  async close(): Promise<void> {
    this.client?.close();
    this.client = null;
    await this.sink.close();
  }

  /** Migrates while the guest runs, then stops it when the end is near. */
  private async precopy(
    qmp: QmpClient,
    precopy: PrecopyOptions,
    deadline: number,
    stopping?: () => void,
  ): Promise<void> {
    const started = performance.now();
    // The output is held from here, not from the stop: QEMU may switch over on its own (stopping the guest) at
    // any moment of the pre-copy, and a frame released between that stop and a later hold reached the client
    // during the pause (seen under CPU load, whatever the margin). What stays outside the hold is the secondary's
    // preparation before SUSPENDED (its standby QEMU starting).
    stopping?.();
    await qmp.execute('migrate', { uri: precopy.uri }, deadline - started);
    const stopBy = Math.min(started + precopy.maxMs, deadline);
    try {
      let info: MigrationInfo;
      try {
        info = await waitForMigration(
          qmp,
          (m) =>
            SWITCHING_OVER.has(m.status ?? '') ||
            (m.status === 'active' &&
              (m.ram?.transferred ?? 0) > 0 &&
              (m.ram?.remaining ?? Infinity) <= precopy.stopAtRemainingBytes),
          { deadline: stopBy, pollMs: PRECOPY_POLL_MS, what: `pre-copy to ${precopy.uri}` },
        );
      } catch (err) {
        if (err instanceof MigrationFailed || performance.now() < stopBy) throw err;
        info = { status: 'active' }; // maxMs reached: stop the guest with whatever is left
      }
      if (!SWITCHING_OVER.has(info.status ?? '')) await qmp.execute('stop', undefined, deadline - performance.now());
    } catch (err) {
      await cancelMigration(qmp);
      throw err;
    }
    this.stoppedAt = performance.now();
    this.precopyMs = this.stoppedAt - started;
  }

  private record(mode: 'stream' | 'precopy', info: MigrationInfo, stateBytes = 0): void {
    const figures: QemuCheckpointFigures = {
      mode,
      transferredBytes: info.ram?.transferred ?? stateBytes,
      precopyMs: Math.round(this.precopyMs),
      stopToCompleteMs: Math.round(performance.now() - this.stoppedAt),
      qemuDowntimeMs: info.downtime ?? 0,
    };
    this.stats.last = figures;
    this.log.debug({ ...figures, stateBytes }, 'qemu migration done');
  }

  /** Runs one driver call on a connected QMP client (connecting on first use, or after QEMU went away). */
  private async step<T>(
    hook: DriverHook,
    timeoutMs: number,
    body: (qmp: QmpClient, deadline: number) => Promise<T>,
  ): Promise<T> {
    this.stats.calls++;
    const deadline = performance.now() + timeoutMs;
    try {
      const qmp = await this.connection(deadline);
      return await body(qmp, deadline);
    } catch (err) {
      const error = driverError(hook, 'primary', err);
      this.stats.failures++;
      if (error.timedOut) this.stats.timeouts++;
      this.log.warn({ hook, err: error.message }, 'qemu driver call failed');
      throw error;
    }
  }

  private async connection(deadline: number): Promise<QmpClient> {
    if (this.client && !this.client.closed) return this.client;
    // A VM that is gone leaves a refused socket: retrying for the whole call would only delay the failure.
    const timeoutMs = Math.max(1, Math.min(CONNECT_MS, deadline - performance.now()));
    const qmp = await QmpClient.connect(this.options.qmp, { timeoutMs });
    await prepareMigration(qmp, this.migration, deadline - performance.now());
    qmp.on('close', (reason) =>
      this.log.warn({ qmp: this.options.qmp, reason: reason.message }, 'QMP connection lost'),
    );
    this.client = qmp;
    return qmp;
  }
}

/**
 * After a failed step the migration may still be running (a stream over its bound, a late pre-copy): cancel
 * it, so the resume that follows finds the VM free and the next checkpoint can migrate again.
 */
async function cancelMigration(qmp: QmpClient): Promise<void> {
  await qmp.execute('migrate_cancel', undefined, 1000).catch(() => undefined);
}

/**
 * QEMU reports a migration `completed` a moment before its migration thread sets the source's run state to
 * `postmigrate`. A `cont` in between starts the guest, and then the late `postmigrate` makes QEMU refuse the next
 * migration ("Can't migrate the vm that was paused due to previous migration"): so resume only after it.
 */
async function settledAfterMigration(qmp: QmpClient, deadline: number): Promise<void> {
  for (;;) {
    const { status } = await qmp.execute<{ status: string }>('query-status', undefined, deadline - performance.now());
    if (status === 'postmigrate') return;
    if (performance.now() >= deadline) {
      throw new Error(`the source did not reach postmigrate after its migration completed (status ${status})`);
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
}
