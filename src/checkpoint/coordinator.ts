import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../log.js';
import type { DriverHook, VmDriver } from './driver.js';
import {
  emptyDurations,
  type CheckpointEngine,
  type CheckpointOutcome,
  type CheckpointReport,
  type EngineEvents,
  type PhaseDurations,
} from './engine.js';
import {
  CheckpointError,
  LocalDriverError,
  NotProtectedError,
  ShutdownError,
  UnexpectedSyncPointError,
  VersionMismatchError,
} from './errors.js';
import { ControlChannel, defaultMaxStateBytes, defaultTimeouts, type ProtocolTimeouts } from './channel.js';
import { PROTOCOL_VERSION, SyncPoint } from './syncpoint.js';

/** CHKPOINT_TIMER: a checkpoint at least this often, re-armed after each one. */
export const DEFAULT_CHECKPOINT_TIMER_MS = 10_000;

/** The periodic trigger, injectable so tests (and a proxy with its own clock) can drive it. */
export interface CheckpointTimer {
  arm(ms: number, fire: () => void): void;
  disarm(): void;
}

export function realTimer(): CheckpointTimer {
  let handle: NodeJS.Timeout | null = null;
  return {
    arm(ms, fire) {
      if (handle) clearTimeout(handle);
      handle = setTimeout(fire, ms);
      handle.unref();
    },
    disarm() {
      if (handle) clearTimeout(handle);
      handle = null;
    },
  };
}

export interface CoordinatorOptions {
  driver: VmDriver;
  timeouts?: Partial<ProtocolTimeouts>;
  /** CHKPOINT_TIMER in ms (default 10000); null when the caller owns the timer. */
  checkpointTimerMs?: number | null;
  timer?: CheckpointTimer;
  maxStateBytes?: number;
  /** Runs at LOADED, before the primary resumes: the place for an asynchronous flush. */
  beforeResume?: (outcome: CheckpointOutcome) => void | Promise<void>;
  /**
   * From here on the caller holds the primary's output until LOADED: at NEW, or, with a driver that announces
   * its stop (`announcesStop`), when it starts stopping the VM (before a live pre-copy that QEMU may end itself).
   */
  onPrimaryStopping?: () => void;
  logger?: Logger;
  now?: () => number;
}

type Phase = 'detached' | 'handshake' | 'protected';

interface Pending {
  reasons: string[];
  promise: Promise<CheckpointOutcome>;
  resolve(outcome: CheckpointOutcome): void;
}

/**
 * The primary's side of the protocol, and the CheckpointEngine the proxy calls. It owns at most one control
 * connection at a time (attach); a connection that fails is dropped with 'secondary-lost', and the next one
 * attached is re-seeded with a full state before 'ready' (docs/protocol.md, "Initial sync").
 */
export class Coordinator extends EventEmitter<EngineEvents> implements CheckpointEngine {
  private readonly timeouts: ProtocolTimeouts;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly timer: CheckpointTimer;
  private readonly timerMs: number | null;
  private channel: ControlChannel | null = null;
  private peer = '';
  private phase: Phase = 'detached';
  /** Settles when the running transaction (including the primary's resume) is over. */
  private running: Promise<void> | null = null;
  private pending: Pending | null = null;
  private closed = false;

  constructor(private readonly options: CoordinatorOptions) {
    super();
    this.timeouts = { ...defaultTimeouts, ...options.timeouts };
    this.logger = (options.logger ?? silentLogger).child({ role: 'coordinator' });
    this.now = options.now ?? (() => performance.now());
    this.timer = options.timer ?? realTimer();
    this.timerMs = options.checkpointTimerMs === undefined ? DEFAULT_CHECKPOINT_TIMER_MS : options.checkpointTimerMs;
  }

  get isProtected(): boolean {
    return this.phase === 'protected';
  }

  /** Whether a connection is attached and not yet failed (a second one is refused meanwhile). */
  get attached(): boolean {
    return this.channel !== null && this.channel.failed === null;
  }

  /** Takes `stream` as the secondary's control connection and starts the initial sync. False: refused. */
  attach(stream: Duplex, peer = 'secondary'): boolean {
    if (this.closed || this.attached) {
      this.logger.warn({ peer }, 'refusing a second secondary connection while one is attached');
      stream.destroy();
      return false;
    }
    const channel = new ControlChannel(stream, {
      maxStateBytes: this.options.maxStateBytes ?? defaultMaxStateBytes,
      heartbeatIntervalMs: this.timeouts.heartbeatIntervalMs,
      heartbeatLossMs: this.timeouts.heartbeatLossMs,
      now: this.now,
    });
    this.channel = channel;
    this.peer = peer;
    this.phase = 'handshake';
    channel.onFailure((error) => this.lost(channel, error));
    this.logger.info({ peer }, 'secondary connected: initial sync');
    this.running = this.handshake(channel, this.running);
    return true;
  }

  checkpoint(reason: string): Promise<CheckpointOutcome> {
    if (this.closed || !this.isProtected) {
      const error = this.closed ? new ShutdownError('coordinator') : new NotProtectedError();
      return Promise.resolve({
        ok: false,
        reason,
        reasons: [reason],
        durations: emptyDurations(),
        error,
        secondaryLost: false,
      });
    }
    if (this.running) {
      // One at a time: every request during a checkpoint joins the single next one.
      if (this.pending) {
        this.pending.reasons.push(reason);
        return this.pending.promise;
      }
      let resolve!: (outcome: CheckpointOutcome) => void;
      const promise = new Promise<CheckpointOutcome>((r) => (resolve = r));
      this.pending = { reasons: [reason], promise, resolve };
      return promise;
    }
    return this.start([reason]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer.disarm();
    this.channel?.fail(new ShutdownError('coordinator'));
    await this.running;
  }

  private start(reasons: string[]): Promise<CheckpointOutcome> {
    const channel = this.channel as ControlChannel;
    this.timer.disarm();
    return new Promise((resolve) => {
      const run: Promise<void> = this.transaction(channel, reasons, false, resolve).then(() => this.finished(run));
      this.running = run;
    });
  }

  private finished(run: Promise<void>): void {
    // A reconnection may already have started its initial sync: then that is what runs now, not this.
    const superseded = this.running !== run;
    if (!superseded) this.running = null;
    const next = this.pending;
    this.pending = null;
    if (next) {
      if (this.isProtected && !this.closed && !superseded) {
        void this.start(next.reasons).then(next.resolve);
        return;
      }
      const error = this.closed ? new ShutdownError('coordinator') : new NotProtectedError();
      next.resolve({
        ok: false,
        reason: next.reasons[0],
        reasons: next.reasons,
        durations: emptyDurations(),
        error,
        secondaryLost: false,
      });
    }
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timerMs === null || !this.isProtected || this.running || this.closed) return;
    this.timer.arm(this.timerMs, () => void this.checkpoint('timer'));
  }

  private lost(channel: ControlChannel, error: CheckpointError): void {
    if (channel !== this.channel) return;
    const wasProtected = this.phase === 'protected';
    this.phase = 'detached';
    this.timer.disarm();
    if (this.closed) return;
    this.logger.warn({ peer: this.peer, reason: error.reason, code: error.code, err: error.message }, 'secondary lost');
    this.emit('secondary-lost', { reason: error.reason, error, wasProtected });
  }

  /**
   * Initial sync. An extension peer opens with HELLO; it is answered, seeded with a full checkpoint, and then
   * says READY. A seed-only peer opens with READY (it loaded an initial state on its own); it is seeded with
   * a full checkpoint all the same, so a reconnecting secondary never runs on a stale state.
   */
  private async handshake(channel: ControlChannel, previous: Promise<void> | null): Promise<void> {
    const first = await channel.next('READY', this.timeouts.loadMs);
    if (!first.ok) return channel.fail(first.error);
    const message = first.value;
    if (message.kind === 'hello') {
      if (message.version !== PROTOCOL_VERSION) {
        // The peer announced extensions, so it may be told why.
        channel.extensions = true;
        return channel.fail(new VersionMismatchError(PROTOCOL_VERSION, message.version));
      }
      channel.sendHello(PROTOCOL_VERSION);
      channel.enableExtensions();
    } else if (message.kind !== 'sync' || message.value !== SyncPoint.READY) {
      const received = message.kind === 'sync' ? message.value : SyncPoint.SEND;
      return channel.fail(new UnexpectedSyncPointError('READY', SyncPoint.READY, received));
    }
    // An aborted checkpoint may still be resuming the primary: never drive the VM from two places at once.
    await previous;
    if (channel.failed || this.closed) return;
    let seeded = false;
    await this.transaction(channel, ['seed'], true, (outcome) => (seeded = outcome.ok));
    if (!seeded) return channel.fail(new NotProtectedError());
    if (channel.extensions) {
      const ready = await channel.expect('READY', this.timeouts.waitMs);
      if (!ready.ok) return channel.fail(ready.error);
    }
    if (channel.failed || this.closed) return;
    this.phase = 'protected';
    this.running = null;
    this.logger.info({ peer: this.peer, extensions: channel.extensions }, 'secondary ready: the pair is protected');
    this.emit('ready', { peer: this.peer, extensions: channel.extensions });
    this.armTimer();
  }

  /** One checkpoint. `atLoaded` gets the outcome at LOADED or at the failure; the promise settles after resume. */
  private async transaction(
    channel: ControlChannel,
    reasons: string[],
    seeding: boolean,
    atLoaded: (outcome: CheckpointOutcome) => void,
  ): Promise<void> {
    const t = this.timeouts;
    const durations = emptyDurations();
    const t0 = this.now();
    let suspended = false;
    const base = { reason: reasons[0], reasons, durations };

    const abort = async (error: CheckpointError): Promise<void> => {
      let secondaryLost = true;
      if (error instanceof LocalDriverError && channel.extensions && !channel.failed && !seeding) {
        // Our own VM failed, not the secondary: ABORT lets it resume and stay protected.
        channel.send('ABORT');
        secondaryLost = false;
      } else {
        channel.fail(error);
      }
      if (suspended) await this.callDriver('resume');
      durations.total = this.now() - t0;
      const outcome: CheckpointOutcome = { ...base, ok: false, error, secondaryLost };
      atLoaded(outcome);
      this.report({ ...outcome, seeding }, 'checkpoint aborted');
    };

    // A driver that does not announce its stop may stop at any time from here: the output is held from NEW.
    const stopping = (): void => this.options.onPrimaryStopping?.();
    if (!this.options.driver.announcesStop) stopping();
    channel.send('NEW');
    const suspendedAck = await channel.expect('SUSPENDED', t.waitMs);
    if (!suspendedAck.ok) return abort(suspendedAck.error);
    suspended = true;
    const suspendError = await this.callDriver('suspend', stopping);
    if (suspendError) return abort(suspendError);
    durations.suspend = this.now() - t0;

    let t1 = this.now();
    let state: Buffer;
    try {
      state = await this.options.driver.save();
    } catch (err) {
      return abort(new LocalDriverError('save', err as Error));
    }
    durations.save = this.now() - t1;

    t1 = this.now();
    // Not awaited: the RECEIVED wait below bounds the whole transfer, and the writes cannot fail it.
    void channel.sendState(state);
    const received = await channel.expect('RECEIVED', t.transferMs);
    if (!received.ok) return abort(received.error);
    durations.transfer = this.now() - t1;

    t1 = this.now();
    const loaded = await channel.expect('LOADED', t.loadMs);
    if (!loaded.ok) return abort(loaded.error);
    durations.load = this.now() - t1;

    const outcome: CheckpointOutcome = { ...base, durations: { ...durations }, ok: true, stateBytes: state.length };
    atLoaded(outcome);
    // The caller flushes in its continuation of the outcome; microtasks drain before setImmediate, so that
    // flush has run before the primary emits anything new.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      await this.options.beforeResume?.(outcome);
    } catch (err) {
      this.logger.error({ err }, 'beforeResume hook failed; resuming anyway');
    }
    t1 = this.now();
    await this.callDriver('resume');
    durations.resume = this.now() - t1;
    durations.total = this.now() - t0;
    this.report({ ...outcome, durations, seeding }, 'checkpoint done');
  }

  /** Runs a void hook; a failure comes back as a value (and a failed resume is logged here, loudly). */
  private async callDriver(
    hook: Exclude<DriverHook, 'save' | 'load'>,
    stopping?: () => void,
  ): Promise<LocalDriverError | null> {
    try {
      await (hook === 'suspend' ? this.options.driver.suspend(stopping) : this.options.driver[hook]());
      return null;
    } catch (err) {
      const error = new LocalDriverError(hook, err as Error);
      if (hook === 'resume') this.logger.error({ err: error.message }, 'primary VM failed to resume');
      return error;
    }
  }

  private report(report: CheckpointReport, message: string): void {
    const level = report.ok ? 'info' : 'warn';
    this.logger[level](
      {
        reasons: report.reasons,
        seeding: report.seeding,
        durationsMs: roundDurations(report.durations),
        ...(report.ok ? { stateBytes: report.stateBytes } : { code: report.error.code, err: report.error.message }),
      },
      message,
    );
    this.emit('checkpoint', report);
  }
}

function roundDurations(d: PhaseDurations): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(d)) out[k] = v === null ? null : Math.round(v * 1000) / 1000;
  return out;
}
