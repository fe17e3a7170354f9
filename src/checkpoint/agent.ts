import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../log.js';
import type { DriverHook, VmDriver } from './driver.js';
import type { LossEvent, ReadyEvent } from './engine.js';
import {
  ChannelClosedError,
  CheckpointError,
  LocalDriverError,
  PeerError,
  SeedAbortedError,
  ShutdownError,
  UnexpectedSyncPointError,
  VersionMismatchError,
  WaitTimeoutError,
} from './errors.js';
import { ControlChannel, defaultMaxStateBytes, defaultTimeouts, type ProtocolTimeouts } from './channel.js';
import { PeerErrorCode, PROTOCOL_VERSION, SyncPoint, syncPointName } from './syncpoint.js';
import { isTlsFailure, mayBeTlsRefusal } from './transport.js';

export interface AgentOptions {
  driver: VmDriver;
  timeouts?: Partial<ProtocolTimeouts>;
  maxStateBytes?: number;
  /**
   * Announce the extensions with HELLO (default), falling back to the seed's opening when the primary shows
   * it speaks only the six seed values (docs/protocol.md, "Who may send extensions"). False never announces:
   * the agent opens with READY and neither heartbeats nor expects heartbeats.
   */
  extensions?: boolean;
  logger?: Logger;
  now?: () => number;
}

/** The secondary's view of one checkpoint, in ms. */
export interface AgentCheckpointReport {
  suspend: number;
  /** SUSPENDED sent until the whole state arrived (the primary's save plus the transfer). */
  receive: number;
  load: number;
  resume: number;
  total: number;
  stateBytes: number;
  seeding: boolean;
}

export interface AgentEvents {
  ready: [event: ReadyEvent];
  checkpoint: [report: AgentCheckpointReport];
  /** A checkpoint the primary abandoned with ABORT; this VM resumed and stays protected. */
  aborted: [];
  /** Heartbeat silence, a closed connection, or a timed-out wait: the caller fails over. */
  'primary-lost': [event: LossEvent];
  /** The session ended with the primary alive (it dropped us, or this side failed): wait to be re-seeded. */
  dropped: [event: LossEvent];
}

/** How one served connection ended. */
export type AgentEnd = { kind: 'primary-lost' | 'dropped'; error: CheckpointError } | { kind: 'shutdown' };

/** How the primary answered HELLO. */
type HelloReply =
  | { kind: 'extensions' }
  /** Seed-only and it began a checkpoint at once: that checkpoint seeds this VM, READY is past. */
  | { kind: 'seed-new' }
  /** Seed-only and silent: it skipped the unknown words and waits for READY on this connection. */
  | { kind: 'seed-silent' }
  | { kind: 'failed'; error: CheckpointError };

/** These mean the primary is gone, not merely at odds with us. */
const primaryLossReasons = new Set(['timeout', 'closed', 'heartbeat']);

/**
 * The secondary's side of the protocol. `serve` runs one control connection to its end; the caller decides
 * what follows (accept or dial the next connection after 'dropped', fail over after 'primary-lost').
 */
export class Agent extends EventEmitter<AgentEvents> {
  private readonly timeouts: ProtocolTimeouts;
  private readonly logger: Logger;
  private readonly now: () => number;
  private channel: ControlChannel | null = null;
  private suspended = false;
  /** READY was sent on the current connection: only from then on can this side take over. */
  private sentReady = false;
  private closed = false;
  /** Learnt from a primary's answer to HELLO; kept for the agent's life (a seed-only peer never announces). */
  private peerSeedOnly = false;
  /** A primary answered HELLO once: a later close after HELLO is then a refusal or a restart, not the seed. */
  private peerAnnounced = false;

  constructor(private readonly options: AgentOptions) {
    super();
    this.timeouts = { ...defaultTimeouts, ...options.timeouts };
    this.logger = (options.logger ?? silentLogger).child({ role: 'agent' });
    this.now = options.now ?? (() => performance.now());
  }

  /** Whether a connection is being served (a second one is refused meanwhile). */
  get busy(): boolean {
    return this.channel !== null;
  }

  async serve(stream: Duplex, peer = 'primary'): Promise<AgentEnd> {
    if (this.closed || this.channel) {
      stream.destroy();
      return { kind: 'shutdown' };
    }
    const channel = new ControlChannel(stream, {
      maxStateBytes: this.options.maxStateBytes ?? defaultMaxStateBytes,
      heartbeatIntervalMs: this.timeouts.heartbeatIntervalMs,
      heartbeatLossMs: this.timeouts.heartbeatLossMs,
      now: this.now,
      reuseStateBuffer: true,
    });
    this.channel = channel;
    this.sentReady = false;
    try {
      const error = await this.session(channel, peer);
      return await this.end(channel, error);
    } finally {
      this.channel = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channel?.fail(new ShutdownError('agent'), PeerErrorCode.SHUTDOWN);
  }

  /** Whether the next connection opens with HELLO: not when told so, nor once the primary showed it is seed-only. */
  get announces(): boolean {
    return this.options.extensions !== false && !this.peerSeedOnly;
  }

  /** Runs the connection until it fails; returns why. */
  private async session(channel: ControlChannel, peer: string): Promise<CheckpointError> {
    const t = this.timeouts;
    let readyImplied = false;
    if (this.announces) {
      const reply = await this.openWithHello(channel);
      if (reply.kind === 'failed') return reply.error;
      if (reply.kind === 'extensions') {
        // Initial sync: the primary seeds this VM with a full checkpoint; READY follows the load. The primary
        // may first finish resuming from an aborted checkpoint, so this wait is as long as a load's.
        const seedNew = await channel.expect('NEW', t.loadMs);
        if (!seedNew.ok) return seedNew.error;
      }
      if (reply.kind !== 'seed-silent') {
        const seeded = await this.transaction(channel, true);
        if (seeded) return seeded;
        readyImplied = reply.kind === 'seed-new';
      }
    }
    // A seed primary that began with NEW is past waiting for READY: sending it now would be out of turn.
    if (!readyImplied) channel.send('READY');
    this.sentReady = true;
    this.logger.info({ peer, extensions: channel.extensions }, 'ready: waiting for checkpoints');
    this.emit('ready', { peer, extensions: channel.extensions });
    while (true) {
      // Idle: no bound here; a lost primary shows as heartbeat silence or a closed connection.
      const next = await channel.next('NEW', null);
      if (!next.ok) return next.error;
      const message = next.value;
      if (message.kind === 'hello') {
        // A late answer to HELLO after the seed fallback: the primary does announce, so ask again next time.
        this.peerSeedOnly = false;
        this.peerAnnounced = true;
      }
      if (message.kind !== 'sync' || message.value !== SyncPoint.NEW) return unexpected('NEW', message);
      const failed = await this.transaction(channel, false);
      if (failed) return failed;
    }
  }

  /**
   * Sends HELLO and reads the answer. A seed-only primary shows itself by closing the connection (HELLO is
   * garbage to it), by answering with a seed value, or by saying nothing (it skipped the unknown words);
   * the agent remembers it and never sends it an extension again.
   */
  private async openWithHello(channel: ControlChannel): Promise<HelloReply> {
    channel.sendHello(PROTOCOL_VERSION);
    const reply = await channel.next('HELLO', this.timeouts.waitMs);
    if (!reply.ok) {
      // A primary that answered HELLO before is slow or restarting, not seed-only.
      if (reply.error instanceof WaitTimeoutError && !this.peerAnnounced) {
        this.learnSeedOnly(`no answer to HELLO within ${this.timeouts.waitMs} ms: sending READY`);
        return { kind: 'seed-silent' };
      }
      if (reply.error instanceof ChannelClosedError && !this.peerAnnounced) {
        // Under TLS 1.3 a primary refusing this side's certificate also just closes: no evidence then.
        if (mayBeTlsRefusal(channel.stream) || isTlsFailure(reply.error.cause)) {
          this.logger.warn(
            'the primary closed the TLS connection on HELLO: it refused this certificate, or it speaks only the seed protocol (then pass --seed-only)',
          );
        } else {
          this.learnSeedOnly('the connection closed on HELLO: the next one opens with READY');
        }
      }
      return { kind: 'failed', error: reply.error };
    }
    const message = reply.value;
    if (message.kind === 'hello') {
      this.peerAnnounced = true;
      channel.enableExtensions();
      if (message.version !== PROTOCOL_VERSION) {
        return { kind: 'failed', error: new VersionMismatchError(PROTOCOL_VERSION, message.version) };
      }
      return { kind: 'extensions' };
    }
    if (message.kind === 'sync' && message.value === SyncPoint.NEW) {
      this.learnSeedOnly('it answered HELLO with NEW: that checkpoint seeds this VM');
      return { kind: 'seed-new' };
    }
    const name = message.kind === 'sync' ? syncPointName(message.value) : 'SEND';
    this.learnSeedOnly(`it answered HELLO with ${name}: the next connection opens with READY`);
    return { kind: 'failed', error: unexpected('HELLO', message) };
  }

  private learnSeedOnly(why: string): void {
    if (!this.peerSeedOnly) this.logger.warn({ why }, 'the primary speaks only the seed protocol: no extensions');
    this.peerSeedOnly = true;
  }

  /** One checkpoint after NEW. Returns null on success (or an ABORT honoured), else why it failed. */
  private async transaction(channel: ControlChannel, seeding: boolean): Promise<CheckpointError | null> {
    const t0 = this.now();
    const suspendError = await this.callDriver('suspend');
    if (suspendError) return suspendError;
    if (channel.failed) return channel.failed;
    const suspend = this.now() - t0;
    channel.send('SUSPENDED');

    let t1 = this.now();
    const arrived = await channel.next('SEND', this.timeouts.transferMs);
    if (!arrived.ok) return arrived.error;
    const message = arrived.value;
    if (message.kind === 'sync' && message.value === SyncPoint.ABORT && channel.extensions) {
      // Nothing was loaded: after an aborted seeding this VM holds no state of the primary's, so READY would
      // let a later failover promote a VM that never was a replica. The session ends (resuming the VM) instead.
      if (seeding) return new SeedAbortedError();
      this.logger.warn('primary aborted the checkpoint: resuming');
      const resumeError = await this.callDriver('resume');
      if (resumeError) return resumeError;
      this.emit('aborted');
      return null;
    }
    if (message.kind !== 'state') return unexpected('SEND', message);
    const receive = this.now() - t1;
    channel.send('RECEIVED');

    t1 = this.now();
    try {
      await this.options.driver.load(message.state);
    } catch (err) {
      return new LocalDriverError('load', err as Error);
    }
    // The driver is done with the state (VmDriver.load's contract): its buffer serves the next checkpoint.
    channel.releaseState();
    if (channel.failed) return channel.failed;
    const load = this.now() - t1;
    channel.send('LOADED');

    t1 = this.now();
    const resumeError = await this.callDriver('resume');
    if (resumeError) return resumeError;
    const resume = this.now() - t1;
    const report = {
      suspend,
      receive,
      load,
      resume,
      total: this.now() - t0,
      stateBytes: message.state.length,
      seeding,
    };
    this.logger.info(report, 'checkpoint loaded');
    this.emit('checkpoint', report);
    return null;
  }

  private async end(channel: ControlChannel, error: CheckpointError): Promise<AgentEnd> {
    // Tell an extension peer why, with a code it can act on; a no-op when the channel already failed.
    const code =
      error instanceof LocalDriverError
        ? {
            suspend: PeerErrorCode.SUSPEND_FAILED,
            load: PeerErrorCode.LOAD_FAILED,
            resume: PeerErrorCode.RESUME_FAILED,
            save: PeerErrorCode.PROTOCOL,
          }[error.hook]
        : undefined;
    channel.fail(error, code ?? true);
    if (this.suspended) await this.callDriver('resume');
    if (this.closed && error instanceof ShutdownError) return { kind: 'shutdown' };
    // Before READY this VM holds no state of the primary's: there is nothing to fail over to.
    const primaryLost = this.sentReady && primaryLossReasons.has(error.reason) && !(error instanceof PeerError);
    const event: LossEvent = { reason: error.reason, error, wasProtected: this.sentReady };
    if (primaryLost) {
      this.logger.error({ reason: error.reason, err: error.message }, 'primary lost: fail over');
      this.emit('primary-lost', event);
      return { kind: 'primary-lost', error };
    }
    this.logger.warn(
      { reason: error.reason, err: error.message },
      'session with the primary ended: waiting to be re-seeded',
    );
    this.emit('dropped', event);
    return { kind: 'dropped', error };
  }

  private async callDriver(hook: Exclude<DriverHook, 'save' | 'load'>): Promise<LocalDriverError | null> {
    try {
      await this.options.driver[hook]();
      this.suspended = hook === 'suspend';
      return null;
    } catch (err) {
      // A failed suspend may have half-worked: resume on the way out all the same.
      if (hook === 'suspend') this.suspended = true;
      return new LocalDriverError(hook, err as Error);
    }
  }
}

function unexpected(expected: 'HELLO' | 'NEW' | 'SEND', message: { kind: string; value?: number }): CheckpointError {
  const received =
    message.kind === 'sync' ? (message.value as number) : message.kind === 'hello' ? SyncPoint.HELLO : SyncPoint.SEND;
  return new UnexpectedSyncPointError(expected, SyncPoint[expected], received);
}
