import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  ControlDecoder,
  encodeControl,
  parseControlAddress,
  type ControlAddress,
  type ControlMessage,
  type ControlVerb,
} from '../../lab/control-protocol.js';
import { silentLogger, type Logger } from '../../log.js';
import { DriverError, type DriverHook, type VmDriver } from '../driver.js';

/**
 * The `lab` driver: drives a lab guest (src/lab/guest.ts) through its control socket, the way a real
 * driver would drive a VM monitor. One connection, opened on first use and reopened after a failure;
 * one request at a time. Every call has its own timeout; on timeout the connection is dropped (a late
 * reply would put the stream out of step) and the call rejects with a DriverError marked timedOut.
 */

export interface LabTimeouts {
  suspendMs: number;
  saveMs: number;
  loadMs: number;
  resumeMs: number;
}

export interface LabDriverOptions {
  maxStateBytes?: number;
  logger?: Logger;
}

export const defaultLabTimeouts: LabTimeouts = { suspendMs: 5_000, saveMs: 30_000, loadMs: 30_000, resumeMs: 5_000 };

const DEFAULT_MAX_STATE = 1 << 30;

interface Pending {
  settle(error: Error | null, message: ControlMessage | null): void;
}

export class LabDriver implements VmDriver {
  readonly kind = 'lab';
  /** Counters for metrics: calls made, calls failed (any reason), and of those, timed out. */
  readonly stats = { calls: 0, failures: 0, timeouts: 0 };
  private readonly address: ControlAddress;
  private readonly timeouts: LabTimeouts;
  private readonly maxStateBytes: number;
  private readonly log: Logger;
  private socket: Socket | null = null;
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(control: string | ControlAddress, timeouts: Partial<LabTimeouts> = {}, options: LabDriverOptions = {}) {
    const address = typeof control === 'string' ? parseControlAddress(control) : control;
    if (address === null) throw new Error(`lab driver: "${String(control)}" is not a control socket address`);
    this.address = address;
    this.timeouts = { ...defaultLabTimeouts, ...timeouts };
    this.maxStateBytes = options.maxStateBytes ?? DEFAULT_MAX_STATE;
    this.log = options.logger ?? silentLogger;
  }

  async suspend(): Promise<void> {
    await this.call('suspend', 'SUSPEND', '', this.timeouts.suspendMs);
  }

  save(): Promise<Buffer> {
    return this.call('save', 'SAVE', '', this.timeouts.saveMs);
  }

  async load(state: Buffer): Promise<void> {
    await this.call('load', 'LOAD', state, this.timeouts.loadMs);
  }

  async resume(): Promise<void> {
    await this.call('resume', 'RESUME', '', this.timeouts.resumeMs);
  }

  async close(): Promise<void> {
    this.drop(new Error('lab driver closed'));
  }

  /** Runs one request after the previous one settles; resolves with the OK reply's body. */
  private call(hook: DriverHook, verb: ControlVerb, body: Buffer | string, timeoutMs: number): Promise<Buffer> {
    const run = (): Promise<Buffer> => this.exchange(hook, verb, body, timeoutMs);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private exchange(hook: DriverHook, verb: ControlVerb, body: Buffer | string, timeoutMs: number): Promise<Buffer> {
    const started = performance.now();
    this.stats.calls++;
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const finish = (error: DriverError | null, reply: Buffer | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pending = null;
        if (error) {
          this.stats.failures++;
          if (error.timedOut) this.stats.timeouts++;
          this.log.warn({ hook, err: error.message }, 'lab driver call failed');
          reject(error);
        } else {
          this.log.debug({ hook, ms: Math.round(performance.now() - started) }, 'lab driver call done');
          resolve(reply ?? Buffer.alloc(0));
        }
      };
      const timer = setTimeout(() => {
        finish(new DriverError(hook, `lab driver: ${hook} timed out after ${timeoutMs} ms`, null, '', true), null);
        this.drop(new Error('timed out'));
      }, timeoutMs);

      this.connection().then(
        (socket) => {
          if (settled) return;
          if (socket.destroyed) {
            finish(new DriverError(hook, `lab driver: ${hook} failed: control connection closed`), null);
            return;
          }
          // Only a connected call waits for a reply; a failed connect is reported as unreachable below.
          this.pending = {
            settle: (error, message) => {
              if (error) return finish(new DriverError(hook, `lab driver: ${hook} failed: ${error.message}`), null);
              if (message?.verb === 'OK') return finish(null, message.body);
              const text = message?.body.toString('utf8') ?? '';
              finish(new DriverError(hook, `lab driver: ${hook} refused by the guest: ${text}`, null, text), null);
            },
          };
          for (const part of encodeControl(verb, body)) socket.write(part);
        },
        (err: Error) => finish(new DriverError(hook, `lab driver: cannot reach the guest: ${err.message}`), null),
      );
    });
  }

  private async connection(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket =
      this.address.kind === 'unix' ? connect(this.address.path) : connect(this.address.port, this.address.host);
    this.socket = socket;
    const decoder = new ControlDecoder(this.maxStateBytes);
    const messages: ControlMessage[] = [];
    socket.on('data', (chunk: Buffer) => {
      const error = decoder.push(chunk, messages);
      for (const message of messages) this.deliver(message);
      messages.length = 0;
      if (error) this.drop(new Error(`malformed reply from the guest (${error})`), socket);
    });
    socket.on('error', (err) => this.drop(new Error(`control connection closed (${err.message})`), socket));
    socket.on('close', () => this.drop(new Error('control connection closed'), socket));
    await Promise.race([
      once(socket, 'connect'),
      once(socket, 'close').then(() => Promise.reject(new Error('control connection closed'))),
    ]);
    return socket;
  }

  private deliver(message: ControlMessage): void {
    const pending = this.pending;
    if (pending === null) {
      this.drop(new Error(`unsolicited ${message.verb} from the guest`));
      return;
    }
    pending.settle(null, message);
  }

  /** Closes the connection (only if `which` is still the current one) and fails the call in flight. */
  private drop(reason: Error, which: Socket | null = this.socket): void {
    if (which !== this.socket) return;
    this.socket = null;
    which?.destroy();
    this.pending?.settle(reason, null);
  }
}
