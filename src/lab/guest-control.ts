import { once } from 'node:events';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import { ControlDecoder, encodeControl, type ControlAddress, type ControlMessage } from './control-protocol.js';
import type { LabGuest } from './guest.js';

/**
 * The lab guest's control socket (see control-protocol.ts): what a VM monitor is to a VM. The lab driver
 * speaks to it; so can a person with `nc -U`. A malformed message gets an ERR reply, is counted, and
 * closes that control connection; the guest itself keeps running.
 */

export interface ControlServerOptions {
  /** LOAD bodies beyond this size are refused before they are buffered. */
  maxStateBytes?: number;
  logger?: Logger;
}

const DEFAULT_MAX_STATE = 1 << 30;

export class GuestControlServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly log: Logger;
  private unixPath: string | null = null;
  controlErrors = 0;

  constructor(
    private readonly guest: LabGuest,
    private readonly options: ControlServerOptions = {},
  ) {
    this.log = options.logger ?? silentLogger;
  }

  /** Listens on a unix socket path (a stale socket file left by a dead guest is replaced) or TCP. */
  async listen(address: ControlAddress): Promise<string> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    if (address.kind === 'unix') {
      await removeStaleSocket(address.path);
      server.listen(address.path);
      this.unixPath = address.path;
    } else {
      server.listen(address.port, address.host);
    }
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err as Error)),
    ]);
    if (address.kind === 'unix') return `unix:${address.path}`;
    const bound = server.address() as AddressInfo;
    return `tcp:${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.unixPath && existsSync(this.unixPath)) unlinkSync(this.unixPath);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'lab guest control connection error'));
    const decoder = new ControlDecoder(this.options.maxStateBytes ?? DEFAULT_MAX_STATE);
    const messages: ControlMessage[] = [];
    socket.on('data', (chunk: Buffer) => {
      const error = decoder.push(chunk, messages);
      for (const message of messages) this.answer(socket, message);
      messages.length = 0;
      if (error) {
        this.controlErrors++;
        this.log.warn({ error }, 'lab guest: malformed control message');
        socket.end(Buffer.concat(encodeControl('ERR', `malformed control message: ${error}`)));
      }
    });
  }

  private answer(socket: Socket, message: ControlMessage): void {
    const send = (verb: 'OK' | 'ERR', body: Buffer | string = ''): void => {
      for (const part of encodeControl(verb, body)) socket.write(part);
    };
    switch (message.verb) {
      case 'SUSPEND':
        this.guest.suspend();
        return send('OK');
      case 'RESUME':
        this.guest.resume();
        return send('OK');
      case 'SAVE':
        return send('OK', this.guest.save());
      case 'LOAD': {
        const error = this.guest.load(message.body);
        if (error) this.controlErrors++;
        return error ? send('ERR', `state not loaded: ${error}`) : send('OK');
      }
      case 'NONDET': {
        const setting = message.body.toString('latin1');
        if (setting !== 'on' && setting !== 'off') {
          this.controlErrors++;
          return send('ERR', 'NONDET takes "on" or "off"');
        }
        this.guest.nondeterministic = setting === 'on';
        return send('OK');
      }
      case 'STATUS':
        return send('OK', JSON.stringify({ ...this.guest.status(), controlErrors: this.controlErrors }));
      case 'PING':
        return send('OK');
      default:
        this.controlErrors++;
        return send('ERR', `${message.verb} is a reply, not a request`);
    }
  }
}

/** A socket file nobody answers on is left over from a guest that died; one that answers is in use. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`control path ${path} exists and is not a socket`);
  const probe = connect(path);
  const alive = await Promise.race([once(probe, 'connect').then(() => true), once(probe, 'error').then(() => false)]);
  probe.destroy();
  if (alive) throw new Error(`control socket ${path} is in use by another process`);
  unlinkSync(path);
}
