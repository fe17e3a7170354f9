import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ConfigError } from '../config/errors.js';
import { clientTlsOptions, serverTlsOptions, type TlsMaterial } from './tls.js';
import { ChannelClosedError, TlsRefusedError } from './errors.js';

/**
 * The control channel runs over any duplex byte stream: a TCP or unix socket, the same under TLS, or an
 * in-memory pair in tests. Which side listens is configuration, independent of the role.
 */
export type Endpoint =
  | { mode: 'listen' | 'connect'; kind: 'tcp'; host: string; port: number }
  | { mode: 'listen' | 'connect'; kind: 'unix'; path: string };

/**
 * Where a dialled socket, plaintext or TLS, delivers what it reads. Such sockets read into one reused buffer
 * (the `onread` option of net.connect and tls.connect) instead of allocating a Buffer per read: on a loaded
 * host that is several times faster for a large plaintext state and about 1.5 times for TLS (one 16 KiB
 * record per read), mostly through less garbage. The reader must copy what it keeps. Accepted sockets
 * cannot do this, so the side that receives large states (the secondary) should be the one that dials.
 */
export interface ChunkTap {
  onChunk: ((chunk: Buffer) => void) | null;
  /** Chunks read before anyone listened, already copied out of the reused buffer. */
  early: Buffer[];
}

export const chunkTaps = new WeakMap<Duplex, ChunkTap>();

/** Size of the reused read buffer of a dialled socket. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/** Parses `listen:HOST:PORT`, `connect:HOST:PORT`, `listen:unix:PATH`, `connect:unix:PATH` (IPv6 in brackets). */
export function parseEndpoint(text: string, field = 'address'): Endpoint {
  const expected = 'listen:HOST:PORT, connect:HOST:PORT, listen:unix:PATH or connect:unix:PATH';
  const colon = text.indexOf(':');
  const mode = text.slice(0, colon);
  if (colon < 0 || (mode !== 'listen' && mode !== 'connect')) throw new ConfigError(field, expected, text);
  const rest = text.slice(colon + 1);
  if (rest.startsWith('unix:')) {
    const path = rest.slice('unix:'.length);
    if (path === '') throw new ConfigError(field, expected, text);
    return { mode, kind: 'unix', path };
  }
  const portColon = rest.lastIndexOf(':');
  let host = rest.slice(0, portColon);
  const portText = rest.slice(portColon + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(portText);
  if (portColon <= 0 || host === '' || !/^\d+$/.test(portText) || port > 65535 || (mode === 'connect' && port === 0)) {
    throw new ConfigError(field, expected, text);
  }
  return { mode, kind: 'tcp', host, port };
}

export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.kind === 'unix') return `${endpoint.mode}:unix:${endpoint.path}`;
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `${endpoint.mode}:${host}:${endpoint.port}`;
}

function tuneSocket(socket: net.Socket): void {
  // Sync points are 8 bytes and each waits on the previous: Nagle would add up to 40 ms per round trip.
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
}

interface ListenerEvents {
  connection: [stream: Duplex, peer: string];
  refused: [error: TlsRefusedError, peer: string];
}

export interface ListenOptions {
  /** Under TLS, how long a connection may take to complete its handshake before it is closed (default 10000). */
  handshakeMs?: number;
}

export const defaultHandshakeMs = 10_000;

/** How long close() lets a handed-over connection finish what it writes (an ERROR SHUTDOWN) before destroying it. */
const CLOSE_GRACE_MS = 500;

/** A listening control endpoint. `address` is the bound endpoint (with the real port when 0 was asked). */
export class ControlListener extends EventEmitter<ListenerEvents> {
  /** Every accepted TCP or unix socket not closed yet: under TLS, handshakes still pending among them. */
  readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly server: net.Server,
    readonly address: Endpoint,
  ) {
    super();
  }

  /**
   * Stops listening and closes every connection: a pending TLS handshake at once, a connection handed over
   * (its owner was told to stop first) after CLOSE_GRACE_MS. Resolves when all are closed.
   */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) {
      if (!handedOver.has(socket)) {
        socket.destroy();
        continue;
      }
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    }
    return closed;
  }
}

/** Raw sockets whose connection was reported (after the TLS handshake, under TLS). */
const handedOver = new WeakSet<net.Socket>();

/**
 * Starts listening; resolves once bound. Under TLS a connection is only reported after the client's certificate
 * passed; one that does not complete its handshake within `handshakeMs` is refused and closed.
 */
export async function listenControl(
  endpoint: Endpoint,
  material: TlsMaterial | null,
  options: ListenOptions = {},
): Promise<ControlListener> {
  if (endpoint.mode !== 'listen') throw new ConfigError('address', 'a listen: address', formatEndpoint(endpoint));
  let listener: ControlListener | null = null;
  // A TLSSocket may have lost its address by the time it is refused: each is named from its raw socket.
  const peers = new WeakMap<net.Socket, string>();
  const report = (socket: net.Socket): void => {
    const raw = rawSocket(socket);
    handedOver.add(raw);
    tuneSocket(socket);
    listener?.emit('connection', socket, peers.get(raw) ?? peerName(socket));
  };
  const server: net.Server = material
    ? tls.createServer(
        { ...serverTlsOptions(material), handshakeTimeout: options.handshakeMs ?? defaultHandshakeMs },
        report,
      )
    : net.createServer(report);
  server.on('connection', (raw: net.Socket) => {
    peers.set(raw, peerName(raw));
    const sockets = listener?.sockets;
    if (sockets === undefined) return void raw.destroy();
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
  });
  if (material) {
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      // Node reports a handshake timeout here but leaves the socket open: close every refused one.
      socket.destroy();
      const raw = rawSocket(socket);
      raw.destroy();
      listener?.emit('refused', new TlsRefusedError(err), peers.get(raw) ?? peerName(socket));
    });
  }
  if (endpoint.kind === 'unix') await rm(endpoint.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (endpoint.kind === 'unix') server.listen(endpoint.path, done);
    else server.listen(endpoint.port, endpoint.host, done);
  });
  const bound = server.address();
  const address: Endpoint =
    endpoint.kind === 'tcp' && bound !== null && typeof bound === 'object'
      ? { ...endpoint, port: bound.port }
      : endpoint;
  listener = new ControlListener(server, address);
  return listener;
}

function peerName(socket: net.Socket): string {
  if (socket.remoteAddress === undefined) return 'unix';
  const host = socket.remoteAddress.includes(':') ? `[${socket.remoteAddress}]` : socket.remoteAddress;
  return `${host}:${socket.remotePort}`;
}

/** The TCP or unix socket under a server-side TLSSocket (Node keeps it as `_parent`); the socket itself otherwise. */
function rawSocket(socket: net.Socket): net.Socket {
  return (socket as net.Socket & { _parent?: net.Socket })._parent ?? socket;
}

/**
 * Dialled TLS 1.3 sockets whose server has not yet shown that it accepted this side's certificate. Under
 * TLS 1.3 the client's handshake completes before the server checked the client's certificate: a refusal
 * then shows only as a closed connection, like any other close. The server's first session ticket comes
 * after that check, so it is the sign of acceptance.
 */
const unconfirmed = new WeakSet<Duplex>();

/**
 * Whether the peer at the other end of `stream` may have refused this side's certificate, so that a close is
 * no evidence of anything else. False for plaintext, for accepted sockets (the certificate was checked before
 * they were reported) and for dialled TLS once a session ticket came.
 */
export function mayBeTlsRefusal(stream: Duplex): boolean {
  return unconfirmed.has(stream);
}

/**
 * Whether a socket error is TLS refusing the peer (a certificate, an alert). Under TLS 1.3 a client learns
 * that its certificate was refused only at its first read, after the connection looked established.
 */
export function isTlsFailure(err: Error | undefined): boolean {
  if (!err) return false;
  return /certificate|alert|SSL|TLS|self.signed|verify/i.test(
    `${err.message} ${(err as NodeJS.ErrnoException).code ?? ''}`,
  );
}

/**
 * Connects; resolves when the stream is usable (after the TLS handshake and the server certificate check).
 * Rejects with TlsRefusedError or ChannelClosedError, or after `timeoutMs` or an abort with ChannelClosedError.
 */
export function connectControl(
  endpoint: Endpoint,
  material: TlsMaterial | null,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ChannelClosedError(null, new Error(`connect to ${formatEndpoint(endpoint)} aborted`)));
      return;
    }
    const target = endpoint.kind === 'unix' ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port };
    const tap: ChunkTap = { onChunk: null, early: [] };
    const onread = {
      buffer: Buffer.allocUnsafe(RECEIVE_BUFFER_BYTES),
      callback: (nread: number, buf: Uint8Array): boolean => {
        const chunk = (buf as Buffer).subarray(0, nread);
        if (tap.onChunk) tap.onChunk(chunk);
        else tap.early.push(Buffer.from(chunk));
        return true;
      },
    };
    // tls.connect honours `onread` (it builds its own net.Socket) though @types/node does not declare it.
    const tlsOptions: tls.ConnectionOptions & { onread?: typeof onread } = material
      ? { ...target, ...clientTlsOptions(material), onread }
      : {};
    const socket: net.Socket = material ? tls.connect(tlsOptions) : net.connect({ ...target, onread });
    chunkTaps.set(socket, tap);
    const readyEvent = material ? 'secureConnect' : 'connect';
    const giveUp = (why: string): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new ChannelClosedError(null, new Error(`connect to ${formatEndpoint(endpoint)} ${why}`)));
    };
    const timer = setTimeout(() => giveUp(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => giveUp('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(material && isTlsFailure(err) ? new TlsRefusedError(err) : new ChannelClosedError(null, err));
    });
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (socket instanceof tls.TLSSocket && socket.getProtocol() === 'TLSv1.3') {
        unconfirmed.add(socket);
        socket.once('session', () => unconfirmed.delete(socket));
      }
      socket.removeAllListeners('error');
      tuneSocket(socket);
      resolve(socket);
    });
  });
}

/** Two connected in-memory streams: what one end writes, the other reads. Destroying one ends the other. */
export function memoryPair(): [Duplex, Duplex] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryEnd extends Duplex {
  peer: MemoryEnd | null = null;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.peer?.push(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.peer?.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = null;
    if (peer && !peer.destroyed && !peer.readableEnded) peer.push(null);
    callback(error);
  }
}
