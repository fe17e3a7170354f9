import { mkdir } from 'node:fs/promises';
import { silentLogger, type Logger } from '../../log.js';
import { DriverError, type DriverHook, type VmDriver } from '../driver.js';
import {
  defaultMigrationSettings,
  defaultQemuTimeouts,
  driverError,
  isCompleted,
  parseMigrationUri,
  prepareMigration,
  waitForMigration,
  writeState,
  type MigrationSettings,
  type QemuTimeouts,
} from './qemu-migration.js';
import { QemuVm } from './qemu-process.js';

/**
 * The secondary's qemu driver. It owns the secondary's QEMU processes: a running QEMU takes one incoming
 * migration only, so every load goes into a fresh process started from the configured command line with
 * `-S -incoming defer`, and the process it replaces is killed.
 *
 * One tap: suspend stops the current VM; load kills it (the tap is exclusive), starts the new QEMU on the
 * tap and streams the state into it. Between the kill and a completed load the secondary has no VM.
 *
 * Two taps: suspend starts a standby QEMU on the tap the current VM does not use and leaves the current VM
 * running (the failover target until the new state is in). load streams the state into the standby, or,
 * when the primary pre-copied straight into the standby (`incoming` set, empty state), waits for that
 * migration to complete; then the old VM is killed and the standby becomes current. resume = `cont`.
 *
 * A QEMU that exits without the driver killing it is logged with its exit status and stderr tail, and the
 * next call fails saying the VM is gone; the call after that starts afresh (a new QEMU at the next load).
 */

export interface QemuSecondaryOptions {
  /** The QEMU argv, `{tap}` where the tap name goes, `{qmp}` optionally where the QMP socket path goes. */
  command: readonly string[];
  /** One tap, or two used in turn (both on the bridge that holds the proxy's secondary port). */
  taps: readonly string[];
  /** Where the QMP and incoming sockets go. */
  workDir: string;
  /** Two taps only: the standby listens here for the primary's pre-copy (tcp:HOST:PORT or unix:PATH). */
  incoming?: string;
  migration?: Partial<MigrationSettings>;
  timeouts?: Partial<QemuTimeouts>;
  logger?: Logger;
}

/** Where the last load's time went, in ms: for logs and the report of a slow pause. */
export interface QemuLoadFigures {
  /** Killing the replaced QEMU and waiting for its exit. */
  killMs: number;
  /** Starting the incoming QEMU inside load (one tap only; two taps start it in suspend). */
  startMs: number;
  /** Writing the state and waiting for the incoming migration to complete. */
  feedMs: number;
  stateBytes: number;
}

const COMPLETION_POLL_MS = 20;

export class QemuSecondaryDriver implements VmDriver {
  readonly kind = 'qemu';
  readonly stats = { calls: 0, failures: 0, timeouts: 0, started: 0, last: null as QemuLoadFigures | null };
  private readonly timeouts: QemuTimeouts;
  private readonly migration: MigrationSettings;
  private readonly log: Logger;
  private current: QemuVm | null = null;
  private standby: QemuVm | null = null;
  /** An unexpected exit the next call reports. */
  private gone: { vm: QemuVm; text: string } | null = null;

  constructor(private readonly options: QemuSecondaryOptions) {
    if (options.taps.length < 1 || options.taps.length > 2) {
      throw new Error(`qemu driver (secondary): taps must name one or two taps, got ${options.taps.length}`);
    }
    if (options.incoming !== undefined && options.taps.length !== 2) {
      throw new Error('qemu driver (secondary): incoming (pre-copy) needs two taps: one for the standby QEMU');
    }
    if (options.incoming !== undefined && parseMigrationUri(options.incoming) === null) {
      throw new Error(`qemu driver (secondary): incoming "${options.incoming}" is not tcp:HOST:PORT or unix:PATH`);
    }
    this.timeouts = { ...defaultQemuTimeouts, ...options.timeouts };
    this.migration = { ...defaultMigrationSettings, ...options.migration };
    this.log = options.logger ?? silentLogger;
  }

  /** The VM that resume() starts and that serves after a failover; null before the first load. */
  get currentVm(): QemuVm | null {
    return this.current;
  }

  get standbyVm(): QemuVm | null {
    return this.standby;
  }

  suspend(): Promise<void> {
    return this.step('suspend', this.timeouts.suspendMs, async (deadline) => {
      if (this.options.taps.length === 1) {
        if (this.current) await this.command(this.current, 'stop', deadline);
        return;
      }
      await this.dropStandby();
      const [tapA, tapB] = this.options.taps;
      this.standby = await this.startIncoming(this.current?.tap === tapA ? tapB : tapA, deadline);
    });
  }

  /** The secondary's VM is never saved: the primary's driver does that. */
  save(): Promise<Buffer> {
    return Promise.reject(new DriverError('save', "qemu driver (secondary): save is the primary role's call"));
  }

  load(state: Buffer): Promise<void> {
    return this.step('load', this.timeouts.loadMs, (deadline) =>
      this.options.taps.length === 1 ? this.loadReplacing(state, deadline) : this.loadStandby(state, deadline),
    );
  }

  resume(): Promise<void> {
    return this.step('resume', this.timeouts.resumeMs, async (deadline) => {
      // A standby still waiting belongs to a checkpoint that was abandoned: it will never be loaded.
      await this.dropStandby();
      if (!this.current) throw new Error('there is no VM to resume: no state has been loaded');
      await this.command(this.current, 'cont', deadline);
    });
  }

  /** Kills every QEMU this driver started (their sockets go with them). */
  async close(): Promise<void> {
    const vms = [this.standby, this.current].filter((vm): vm is QemuVm => vm !== null);
    this.standby = null;
    this.current = null;
    await Promise.all(vms.map((vm) => vm.kill()));
  }

  private async loadReplacing(state: Buffer, deadline: number): Promise<void> {
    if (state.length === 0) throw new Error(emptyStateText);
    const t0 = performance.now();
    const old = this.current;
    this.current = null;
    if (old) await old.kill();
    const t1 = performance.now();
    let vm: QemuVm | null = null;
    try {
      vm = await this.startIncoming(this.options.taps[0], deadline);
      const t2 = performance.now();
      await this.feed(vm, state, deadline);
      this.record({ killMs: t1 - t0, startMs: t2 - t1, feedMs: performance.now() - t2, stateBytes: state.length });
    } catch (err) {
      await vm?.kill();
      const freed = old ? ` (its previous QEMU, pid ${old.pid}, was stopped to free tap ${old.tap})` : '';
      throw annotate(err, `; the secondary has no VM now${freed}`);
    }
    this.current = vm;
  }

  private async loadStandby(state: Buffer, deadline: number): Promise<void> {
    const vm = this.standby;
    if (!vm) throw new Error('no standby QEMU is waiting for the state (suspend starts one)');
    const t0 = performance.now();
    try {
      await this.feed(vm, state, deadline);
    } catch (err) {
      await this.dropStandby();
      const kept = this.current ? `the current VM (pid ${this.current.pid}) keeps running` : 'the secondary has no VM';
      throw annotate(err, `; ${kept}`);
    }
    this.standby = null;
    const old = this.current;
    this.current = vm;
    const t1 = performance.now();
    if (old) await old.kill();
    this.record({ killMs: performance.now() - t1, startMs: 0, feedMs: t1 - t0, stateBytes: state.length });
  }

  private record(figures: QemuLoadFigures): void {
    const rounded = { ...figures, killMs: round(figures.killMs), startMs: round(figures.startMs) };
    this.stats.last = { ...rounded, feedMs: round(figures.feedMs) };
    this.log.debug({ pid: this.current?.pid, ...this.stats.last }, 'secondary QEMU loaded');
  }

  /** Streams the state into `vm` (or, for an empty state, lets the pre-copy arrive) and waits until loaded. */
  private async feed(vm: QemuVm, state: Buffer, deadline: number): Promise<void> {
    try {
      if (state.length > 0) {
        const address = parseMigrationUri(this.options.incoming ?? `unix:${vm.incomingPath}`);
        if (address === null) throw new Error(`incoming "${this.options.incoming}" is not tcp:HOST:PORT or unix:PATH`);
        await writeState(address, state, deadline);
      } else if (this.options.incoming === undefined) {
        throw new Error(emptyStateText);
      }
      const qmp = vm.qmp;
      if (!qmp) throw new Error('the incoming QEMU has no QMP connection');
      await waitForMigration(qmp, isCompleted, {
        deadline,
        pollMs: COMPLETION_POLL_MS,
        what: `incoming migration into QEMU pid ${vm.pid}`,
      });
    } catch (err) {
      if (this.gone?.vm === vm) this.gone = null; // reported here, with the exit status
      const text = await vm.explain(err as Error);
      throw annotate(err, text.slice((err as Error).message.length));
    }
  }

  /** One QMP command to a VM; when it fails because QEMU died, the error says how (exit status, stderr). */
  private async command(vm: QemuVm, name: string, deadline: number): Promise<void> {
    try {
      if (!vm.qmp) throw new Error(`QEMU pid ${vm.pid} has no QMP connection`);
      await vm.qmp.execute(name, undefined, deadline - performance.now());
    } catch (err) {
      const text = await vm.explain(err as Error);
      if (this.gone?.vm === vm) this.gone = null; // reported here, with the exit status
      throw annotate(err, text.slice((err as Error).message.length));
    }
  }

  private async startIncoming(tap: string, deadline: number): Promise<QemuVm> {
    await mkdir(this.options.workDir, { recursive: true, mode: 0o700 });
    const vm = await QemuVm.start({
      command: this.options.command,
      tap,
      workDir: this.options.workDir,
      connectTimeoutMs: Math.max(1, deadline - performance.now()),
      logger: this.log,
      onUnexpectedExit: (exited, text) => this.lost(exited, text),
    });
    this.stats.started++;
    try {
      const qmp = vm.qmp;
      if (!qmp) throw new Error('the incoming QEMU has no QMP connection');
      await prepareMigration(qmp, this.migration, deadline - performance.now());
      const uri = this.options.incoming ?? `unix:${vm.incomingPath}`;
      await qmp.execute('migrate-incoming', { uri }, deadline - performance.now());
    } catch (err) {
      const text = await vm.explain(err as Error);
      await vm.kill();
      throw new Error(text);
    }
    return vm;
  }

  private lost(vm: QemuVm, text: string): void {
    if (vm === this.current) this.current = null;
    else if (vm === this.standby) this.standby = null;
    else return;
    this.gone = { vm, text };
  }

  private async dropStandby(): Promise<void> {
    const standby = this.standby;
    this.standby = null;
    await standby?.kill();
  }

  private async step(hook: DriverHook, timeoutMs: number, body: (deadline: number) => Promise<void>): Promise<void> {
    this.stats.calls++;
    const deadline = performance.now() + timeoutMs;
    try {
      const gone = this.gone;
      if (gone) {
        this.gone = null;
        throw new Error(`the VM is gone: ${gone.text}; the next checkpoint starts a new QEMU`);
      }
      await body(deadline);
    } catch (err) {
      const error = driverError(hook, 'secondary', err);
      this.stats.failures++;
      if (error.timedOut) this.stats.timeouts++;
      this.log.warn({ hook, err: error.message }, 'qemu driver call failed');
      throw error;
    }
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** Adds to an error's message in place, so its class (a QMP timeout, say) still says what it was. */
function annotate(err: unknown, more: string): Error {
  const error = err instanceof Error ? err : new Error(String(err));
  error.message += more;
  return error;
}

const emptyStateText =
  'received an empty state, which only a pre-copy into a standby QEMU explains, and this secondary has no ' +
  'pre-copy incoming address (driver.incoming, with two taps)';
