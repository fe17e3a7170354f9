import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * A QMP (QEMU Machine Protocol) client over a unix socket. Our own, not an npm package: the npm QMP clients
 * are unmaintained or callback-era, and what the VM driver needs is about two hundred lines: line-delimited
 * JSON, a greeting, `qmp_capabilities`, commands matched to replies by `id`, and asynchronous events.
 *
 * Every command has a deadline. A reply that comes after its deadline is recognised by its id and dropped, so
 * one slow command never puts later replies out of step. When the connection closes, every command still
 * waiting rejects with a QmpConnectionError naming the socket and the command.
 */

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvent {
  event: string;
  data: unknown;
  timestamp: QmpTimestamp;
}

export interface QmpClientEvents {
  /** An asynchronous event from QEMU (STOP, RESUME, MIGRATION, ...). */
  event: [event: QmpEvent];
  /** The connection ended; `reason` says why (QEMU exited, a protocol error, close()). Emitted once. */
  close: [reason: QmpConnectionError];
}

/** QEMU answered a command with an error: `errorClass` and `desc` are QEMU's own words. */
export class QmpError extends Error {
  readonly code = 'COLO_QMP';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

export type QmpConnectionFailure = 'connect' | 'closed' | 'timeout' | 'protocol';

/** The connection failed, or a command got no answer in time: there is no reply from QEMU to report. */
export class QmpConnectionError extends Error {
  readonly code = 'COLO_QMP_CONNECTION';
  constructor(
    readonly reason: QmpConnectionFailure,
    message: string,
  ) {
    super(message);
    this.name = 'QmpConnectionError';
  }
}

export interface QmpConnectOptions {
  /** The whole connect, greeting and capabilities negotiation must finish within this (default 5000). */
  timeoutMs?: number;
  /** A line longer than this fails the connection (default 4 MiB: query-qmp-schema is the largest reply). */
  maxLineBytes?: number;
  /** Default deadline of execute() (default 10000). */
  commandTimeoutMs?: number;
  /** Retry a refused connect or a missing socket until the deadline (default true: QEMU may be starting). */
  retry?: boolean;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** QEMU creates its socket a few ms after it starts; a connect before then is refused or finds no file. */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED']);
const RETRY_MS = 5;
const DEFAULT_MAX_LINE = 4 << 20;

export class QmpClient extends EventEmitter<QmpClientEvents> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private greeting: ((error: Error | null) => void) | null = null;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private closedBy: QmpConnectionError | null = null;
  private readonly commandTimeoutMs: number;
  private readonly maxLineBytes: number;

  private constructor(
    readonly path: string,
    private readonly socket: Socket,
    options: QmpConnectOptions,
  ) {
    super();
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) =>
      this.fail(new QmpConnectionError('closed', `QMP connection to ${path}: ${err.message}`)),
    );
    socket.on('close', () => this.fail(new QmpConnectionError('closed', `QMP connection to ${path} closed`)));
  }

  /** Connects (retrying while the socket is not there yet), reads the greeting and enters command mode. */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const deadline = performance.now() + timeoutMs;
    const socket = await connectUntil(path, deadline, timeoutMs, options.retry ?? true);
    const client = new QmpClient(path, socket, options);
    try {
      await client.awaitGreeting(Math.max(1, deadline - performance.now()), timeoutMs);
      await client.execute('qmp_capabilities', undefined, Math.max(1, deadline - performance.now()));
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  get closed(): boolean {
    return this.closedBy !== null;
  }

  /** Runs one command; resolves with QEMU's `return` value, rejects with QmpError or QmpConnectionError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = this.commandTimeoutMs): Promise<T> {
    timeoutMs = Math.max(1, Math.round(timeoutMs));
    if (this.closedBy) return Promise.reject(this.closedError(command));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new QmpConnectionError('timeout', `QMP ${command} got no answer from ${this.path} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      this.socket.write(
        JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }),
      );
    });
  }

  /** Closes the connection; commands still waiting reject. */
  close(): void {
    this.fail(new QmpConnectionError('closed', `QMP connection to ${this.path} closed by us`));
  }

  private awaitGreeting(timeoutMs: number, connectTimeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greeting = null;
        reject(new QmpConnectionError('timeout', `no QMP greeting on ${this.path} within ${connectTimeoutMs} ms`));
      }, timeoutMs);
      this.greeting = (error) => {
        clearTimeout(timer);
        this.greeting = null;
        if (error) reject(error);
        else resolve();
      };
    });
  }

  private receive(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline < 0) break;
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.partialBytes + piece.length > this.maxLineBytes) return this.lineTooLong();
      const line = this.partialBytes === 0 ? piece : Buffer.concat([...this.partial, piece]);
      this.partial = [];
      this.partialBytes = 0;
      this.handleLine(line.toString('utf8'));
      if (this.closedBy) return;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.partialBytes + rest.length > this.maxLineBytes) return this.lineTooLong();
      this.partial.push(rest);
      this.partialBytes += rest.length;
    }
  }

  private lineTooLong(): void {
    this.fail(
      new QmpConnectionError('protocol', `QMP message from ${this.path} longer than ${this.maxLineBytes} bytes`),
    );
  }

  private handleLine(text: string): void {
    if (text.trim() === '') return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return this.fail(new QmpConnectionError('protocol', `QMP: not JSON from ${this.path}: ${text.slice(0, 200)}`));
    }
    if (typeof message !== 'object' || message === null) {
      return this.fail(
        new QmpConnectionError('protocol', `QMP: not an object from ${this.path}: ${text.slice(0, 200)}`),
      );
    }
    const m = message as Record<string, unknown>;
    if ('QMP' in m) {
      this.greeting?.(null);
      return;
    }
    if (typeof m.event === 'string') {
      const timestamp = (m.timestamp as QmpTimestamp | undefined) ?? { seconds: 0, microseconds: 0 };
      this.emit('event', { event: m.event, data: m.data ?? null, timestamp });
      return;
    }
    if (!('return' in m) && !('error' in m)) {
      return this.fail(
        new QmpConnectionError('protocol', `QMP: unknown message from ${this.path}: ${text.slice(0, 200)}`),
      );
    }
    // QEMU answers without an id only when it could not parse a request: that is the oldest one waiting.
    const id = typeof m.id === 'number' ? m.id : 'id' in m ? null : (this.pending.keys().next().value ?? null);
    const pending = id === null ? undefined : this.pending.get(id);
    if (pending === undefined || id === null) return; // a reply to a command that already timed out
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ('error' in m) {
      const error = (m.error ?? {}) as { class?: unknown; desc?: unknown };
      pending.reject(new QmpError(pending.command, String(error.class ?? 'unknown'), String(error.desc ?? '')));
    } else {
      pending.resolve(m.return);
    }
  }

  private closedError(command: string): QmpConnectionError {
    const why = this.closedBy?.reason === 'protocol' ? ` (${this.closedBy.message})` : '';
    return new QmpConnectionError('closed', `QMP connection to ${this.path} closed while waiting for ${command}${why}`);
  }

  private fail(reason: QmpConnectionError): void {
    if (this.closedBy) return;
    this.closedBy = reason;
    this.socket.destroy();
    this.greeting?.(reason);
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(this.closedError(pending.command));
    }
    this.emit('close', reason);
  }
}

/** One connect attempt after another until one succeeds or the deadline passes. */
async function connectUntil(path: string, deadline: number, timeoutMs: number, retry: boolean): Promise<Socket> {
  for (;;) {
    const socket = connect({ path });
    const outcome = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const timer = setTimeout(
        () => resolve(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })),
        Math.max(1, deadline - performance.now()),
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(null);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(err);
      });
    });
    if (outcome === null) return socket;
    socket.destroy();
    if (!retry || !RETRYABLE.has(outcome.code ?? '') || performance.now() + RETRY_MS >= deadline) {
      throw new QmpConnectionError(
        'connect',
        `cannot connect to QMP socket ${path} within ${timeoutMs} ms: ${outcome.message}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
