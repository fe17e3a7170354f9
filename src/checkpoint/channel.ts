import type { Duplex } from 'node:stream';
import {
  SyncPoint,
  SyncPointDecoder,
  encodeSendHeader,
  encodeWithArgument,
  encoded,
  PeerErrorCode,
  type SyncPointName,
  type SyncPointValue,
} from './syncpoint.js';
import {
  ChannelClosedError,
  CheckpointError,
  FloodError,
  GarbageError,
  HeartbeatLostError,
  PeerError,
  StateTooLargeError,
  UnexpectedSyncPointError,
  WaitTimeoutError,
} from './errors.js';
import { Heartbeat } from './heartbeat.js';
import { chunkTaps } from './transport.js';

/** One decoded message. ERROR never appears here: it fails the channel with a PeerError instead. */
export type Message =
  { kind: 'sync'; value: SyncPointValue } | { kind: 'state'; state: Buffer } | { kind: 'hello'; version: number };

/** Slice size of a state being written: about 30 ms of encryption on a slow TLS path, 1 ms of plaintext. */
const STATE_SLICE_BYTES = 1024 * 1024;

/** Every wait is bounded; these are the bounds (milliseconds). */
export interface ProtocolTimeouts {
  /** Any sync point answered promptly: SUSPENDED, HELLO, the agent's wait for NEW's successors. */
  waitMs: number;
  /** SEND until RECEIVED on the primary; SUSPENDED until the whole state arrived on the secondary. */
  transferMs: number;
  /** RECEIVED until LOADED, and the wait for a seed-only secondary's READY (it loads before sending it). */
  loadMs: number;
  heartbeatIntervalMs: number;
  /** Silence longer than this on an extension channel is a lost peer. */
  heartbeatLossMs: number;
}

export const defaultTimeouts: ProtocolTimeouts = {
  waitMs: 3000,
  transferMs: 60_000,
  loadMs: 30_000,
  heartbeatIntervalMs: 500,
  heartbeatLossMs: 3000,
};

/** Refuse a state above this unless configured otherwise: a garbage length must not allocate gigabytes. */
export const defaultMaxStateBytes = 1024 * 1024 * 1024;

export type Result<T> = { ok: true; value: T } | { ok: false; error: CheckpointError };

export interface ChannelOptions {
  maxStateBytes: number;
  heartbeatIntervalMs: number;
  heartbeatLossMs: number;
  now(): number;
  /** A correct peer is at most a few messages ahead (RECEIVED and LOADED back to back); more is a flood. */
  maxBacklog?: number;
  /** Keep one state buffer across checkpoints; the owner calls releaseState() when done with each state. */
  reuseStateBuffer?: boolean;
}

interface Waiter {
  expected: SyncPointName;
  resolve(result: Result<Message>): void;
  timer: NodeJS.Timeout | null;
}

/**
 * One control connection: decodes what arrives, queues messages nobody waits for yet (a single-direction
 * handshake lets the peer run ahead), answers bounded waits, and fails exactly once, with a typed reason,
 * on close, garbage, a peer's ERROR, heartbeat loss or a flood. After failing it destroys the stream.
 */
export class ControlChannel {
  /** Set once the peer announced HELLO and this side answered: only then are extensions sent. */
  extensions = false;
  lastHeardAt: number;
  private readonly decoder: SyncPointDecoder;
  private readonly backlog: Message[] = [];
  private waiter: Waiter | null = null;
  private failure: CheckpointError | null = null;
  private readonly failureListeners: ((error: CheckpointError) => void)[] = [];
  private readonly heartbeat: Heartbeat;
  private sendingState = false;
  private drainWaiter: (() => void) | null = null;
  /** Called when a SEND header arrives: the receiver starts timing the transfer there. */
  onStateBegin: ((length: number) => void) | null = null;

  constructor(
    readonly stream: Duplex,
    private readonly options: ChannelOptions,
  ) {
    this.lastHeardAt = options.now();
    this.decoder = new SyncPointDecoder(
      {
        syncPoint: (value) => {
          if (value !== SyncPoint.HEARTBEAT) this.deliver({ kind: 'sync', value });
        },
        withArgument: (value, arg) => {
          if (value === SyncPoint.ERROR) this.fail(new PeerError(arg), false);
          else this.deliver({ kind: 'hello', version: arg });
        },
        stateBegin: (length) => this.onStateBegin?.(length),
        state: (state) => this.deliver({ kind: 'state', state }),
      },
      options.maxStateBytes,
    );
    this.heartbeat = new Heartbeat({
      intervalMs: options.heartbeatIntervalMs,
      lossTimeoutMs: options.heartbeatLossMs,
      now: options.now,
      lastHeard: () => this.lastHeardAt,
      send: () => {
        if (!this.sendingState) this.write(encoded.HEARTBEAT);
      },
      onLoss: (silentMs) => this.fail(new HeartbeatLostError(silentMs)),
    });
    this.decoder.reuseStateBuffer = options.reuseStateBuffer ?? false;
    const tap = chunkTaps.get(stream);
    if (tap) {
      // The socket reads into one reused buffer: the decoder must copy, never keep a view.
      this.decoder.chunksAreReused = true;
      tap.onChunk = (chunk) => this.receive(chunk);
      for (const chunk of tap.early.splice(0)) this.receive(chunk);
    } else {
      stream.on('data', (chunk: Buffer) => this.receive(chunk));
    }
    stream.on('end', () => this.fail(new ChannelClosedError(this.waiter?.expected ?? null), false));
    stream.on('close', () => this.fail(new ChannelClosedError(this.waiter?.expected ?? null), false));
    stream.on('error', (err: Error) => this.fail(new ChannelClosedError(this.waiter?.expected ?? null, err), false));
  }

  get failed(): CheckpointError | null {
    return this.failure;
  }

  /** Registers a listener for the one failure; called at once if the channel already failed. */
  onFailure(listener: (error: CheckpointError) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /** Turns extensions on (after HELLO both ways) and starts heartbeating. */
  enableExtensions(): void {
    this.extensions = true;
    this.lastHeardAt = this.options.now();
    this.heartbeat.start();
  }

  /** The last state received may be overwritten by the next (see reuseStateBuffer). */
  releaseState(): void {
    this.decoder.releaseState();
  }

  send(name: SyncPointName): void {
    this.write(encoded[name]);
  }

  sendHello(version: number): void {
    this.write(encodeWithArgument(SyncPoint.HELLO, version));
  }

  /**
   * SEND, the u64 length, then the state in slices (views, never copies). One write of a whole state would
   * be encrypted in one go under TLS: seconds without heartbeats or timers on a large state. Slices keep
   * the event loop turning; at most about two are queued, so the kernel never runs dry between them.
   * Heartbeats are held back meanwhile: they must not land inside the state, and the peer sees bytes anyway.
   */
  async sendState(state: Buffer): Promise<void> {
    if (this.failure) return;
    this.sendingState = true;
    try {
      this.stream.write(encodeSendHeader(state.length));
      for (let offset = 0; offset < state.length; offset += STATE_SLICE_BYTES) {
        if (this.failure) return;
        this.stream.write(state.subarray(offset, offset + STATE_SLICE_BYTES));
        if (this.stream.writableLength > STATE_SLICE_BYTES) await this.drained();
      }
    } finally {
      this.sendingState = false;
    }
  }

  /** Resolves once the stream's queue emptied, or the channel failed (fail() wakes it). */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.drainWaiter = null;
        resolve();
      };
      this.drainWaiter = done;
      this.stream.on('drain', done);
    });
  }

  /**
   * The next message, whatever it is, within `timeoutMs` (null: no limit, for an idle agent). `expected`
   * only names the wait in errors. Resolves, never rejects.
   */
  next(expected: SyncPointName, timeoutMs: number | null): Promise<Result<Message>> {
    if (this.failure) return Promise.resolve({ ok: false, error: this.failure });
    const queued = this.backlog.shift();
    if (queued) return Promise.resolve({ ok: true, value: queued });
    return new Promise((resolve) => {
      const waiter: Waiter = { expected, resolve, timer: null };
      if (timeoutMs !== null) {
        waiter.timer = setTimeout(() => {
          // As in the heartbeat: let the poll phase deliver what already arrived before calling it late.
          setImmediate(() => {
            if (this.waiter !== waiter) return;
            this.waiter = null;
            resolve({ ok: false, error: new WaitTimeoutError(expected, timeoutMs) });
          });
        }, timeoutMs);
      }
      this.waiter = waiter;
    });
  }

  /** Waits for one bare sync point; anything else is an UnexpectedSyncPointError naming both. */
  async expect(name: SyncPointName, timeoutMs: number | null): Promise<Result<Message>> {
    const result = await this.next(name, timeoutMs);
    if (!result.ok) return result;
    const message = result.value;
    if (message.kind === 'sync' && message.value === SyncPoint[name]) return result;
    const received =
      message.kind === 'sync' ? message.value : message.kind === 'hello' ? SyncPoint.HELLO : SyncPoint.SEND;
    return { ok: false, error: new UnexpectedSyncPointError(name, SyncPoint[name], received) };
  }

  /**
   * Fails the channel with `error` and destroys the stream. `tellPeer`: on an extension channel, first send
   * ERROR with a code the peer can act on (DROPPING tells a secondary this is no primary crash).
   */
  fail(error: CheckpointError, tellPeer: boolean | number = true): void {
    if (this.failure) return;
    this.failure = error;
    this.heartbeat.stop();
    if (tellPeer !== false && this.extensions && !this.stream.destroyed) {
      const code = typeof tellPeer === 'number' ? tellPeer : peerCodeFor(error);
      this.stream.end(encodeWithArgument(SyncPoint.ERROR, code));
      // Give the ERROR a moment to leave, but never wait on a peer that does not read.
      setTimeout(() => this.stream.destroy(), 100).unref();
    } else {
      this.stream.destroy();
    }
    this.drainWaiter?.();
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve({ ok: false, error });
    }
    for (const listener of this.failureListeners.splice(0)) listener(error);
  }

  private write(buf: Buffer): void {
    if (!this.failure && !this.stream.destroyed) this.stream.write(buf);
  }

  private receive(chunk: Buffer): void {
    this.lastHeardAt = this.options.now();
    const failure = this.decoder.push(chunk);
    if (failure && !this.failure) {
      const expected = this.waiter?.expected ?? null;
      this.fail(
        failure.reason === 'state-too-large'
          ? new StateTooLargeError(failure.length, failure.max)
          : new GarbageError(expected, failure.hex),
      );
    }
  }

  private deliver(message: Message): void {
    if (this.failure) return;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve({ ok: true, value: message });
      return;
    }
    this.backlog.push(message);
    const max = this.options.maxBacklog ?? 8;
    if (this.backlog.length > max) this.fail(new FloodError(this.backlog.length));
  }
}

function peerCodeFor(error: CheckpointError): number {
  switch (error.reason) {
    case 'timeout':
    case 'heartbeat':
      return PeerErrorCode.TIMEOUT;
    case 'state-too-large':
      return PeerErrorCode.STATE_TOO_LARGE;
    case 'version':
      return PeerErrorCode.VERSION;
    case 'shutdown':
      return PeerErrorCode.SHUTDOWN;
    case 'driver':
      return PeerErrorCode.LOAD_FAILED;
    default:
      return PeerErrorCode.PROTOCOL;
  }
}
