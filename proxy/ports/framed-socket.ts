import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { FrameDecoder } from './framed.js';
import type { FrameSink } from '../port.js';
import { ReadSlabs, SlabReader, SlabTrackingSink } from './read-slabs.js';
import type { SocketAddress } from './socket-address.js';
import { formatSocketAddress } from './socket-address.js';

/** A FrameSink told when a read chunk has been fully decoded: the natural point to flush batched output. */
export interface ChunkSink extends FrameSink {
  onChunkEnd(): void;
}

const ignoreFrames: FrameSink = { onFrame() {}, onReject() {} };

/** What Node keeps of an accepted socket's connection; see FramedSocket.takeOver(). */
interface SocketInternals {
  _handle: object | null;
}

export type DisconnectReason = 'closed' | 'replaced' | 'oversized' | 'shutdown';

export interface DisconnectInfo {
  reason: DisconnectReason;
  /** Output Node still held for the lost peer (handed to the socket, never reached the kernel). */
  lostBytes: number;
  error: string | null;
}

export interface FramedSocketOptions {
  /** The role, e.g. "primary-in": used in logs and errors. */
  name: string;
  address: SocketAddress;
  vnetHdr: boolean;
  /** Where decoded input goes; null ignores input unread-as-frames (outdev: bytes counted, never parsed). */
  sink: ChunkSink | null;
  /** Reconnect backoff for connect: addresses: starts here, doubles per failure, capped at retryMaxMs. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Output backlog (bytes) above which write() returns false and 'drain' is later emitted. */
  highWaterMark?: number;
  /**
   * Where input is read into. Frames handed to the sink are views of these slabs; whoever reports a frame
   * done() to them lets its memory be read into again (see read-slabs.ts). Default: slabs of this socket's
   * own that nobody reports to, i.e. never reused while a frame is alive.
   */
  readSlabs?: ReadSlabs;
}

export interface FramedSocketCounters {
  connects: number;
  disconnects: number;
  replaced: number;
  connectFailures: number;
  bytesIn: number;
  bytesOut: number;
  lostOutputBytes: number;
}

/**
 * One framed port on one socket. A listening side serves one peer at a time: a new connection replaces
 * the current one (a peer that crashed and came back is not locked out by its half-open predecessor).
 * A connecting side reconnects with exponential backoff whenever the connection drops or fails.
 *
 * Output is written in call order. While no peer is connected it waits in order (and counts as backlog),
 * so the caller's backpressure (pause the inputs) applies instead of loss.
 *
 * Events: 'ready' (listening, or first connected), 'connect' (peer: string), 'disconnect' (DisconnectInfo),
 * 'drain' (backlog fell to or below highWaterMark after write() returned false), 'socket-error' (Error).
 */
export class FramedSocket extends EventEmitter {
  readonly name: string;
  readonly address: SocketAddress;
  readonly counters: FramedSocketCounters = {
    connects: 0,
    disconnects: 0,
    replaced: 0,
    connectFailures: 0,
    bytesIn: 0,
    bytesOut: 0,
    lostOutputBytes: 0,
  };
  private readonly decoder: FrameDecoder;
  private readonly sink: ChunkSink | null;
  private readonly tracking: SlabTrackingSink;
  private readonly readSlabs: ReadSlabs;
  /** The connected socket's read position, null without one or when it reads Node's own buffers. */
  private reader: SlabReader | null = null;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly highWaterMark: number;
  /** Reading stopped because this input ran ahead of another (see hold()); independent of pause(). */
  private held = false;
  private server: net.Server | null = null;
  private socket: net.Socket | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private paused = false;
  private wantDrain = false;
  private closing = false;
  private started = false;
  private retryDelay: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private closeReason: DisconnectReason | null = null;
  private lastError: string | null = null;
  private unlinkOnClose: string | null = null;

  constructor(options: FramedSocketOptions) {
    super();
    this.name = options.name;
    this.address = options.address;
    this.sink = options.sink;
    this.tracking = new SlabTrackingSink(options.sink ?? ignoreFrames);
    this.decoder = new FrameDecoder(options.vnetHdr, this.tracking);
    this.readSlabs = options.readSlabs ?? new ReadSlabs();
    this.retryInitialMs = options.retryInitialMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 2000;
    this.retryDelay = this.retryInitialMs;
    this.highWaterMark = options.highWaterMark ?? 1024 * 1024;
  }

  get connected(): boolean {
    return this.socket !== null;
  }

  /** Bytes written but not yet handed to the kernel: waiting for a peer, or in the socket's buffer. */
  get backlog(): number {
    return this.pendingBytes + (this.socket?.writableLength ?? 0);
  }

  /** Listening: resolves once bound. Connecting: resolves at the first successful connect. */
  start(): Promise<void> {
    if (this.started) throw new Error(`${this.name}: already started`);
    this.started = true;
    return this.address.mode === 'listen' ? this.listen() : this.connectFirst();
  }

  /** Where the socket is, with the kernel-chosen port for listen:HOST:0 (e.g. "127.0.0.1:41234"). */
  describe(): string {
    const a = this.address;
    if (a.kind === 'unix') return a.path;
    const bound = this.server?.address();
    const port = bound !== null && typeof bound === 'object' ? bound.port : a.port;
    const host = a.host.includes(':') ? `[${a.host}]` : a.host;
    return `${host}:${port}`;
  }

  /** Queues `data` for the peer in order; false when the backlog is above the high-water mark. */
  write(data: Buffer): boolean {
    const socket = this.socket;
    if (socket !== null && this.pending.length === 0) {
      socket.write(data);
    } else {
      this.pending.push(data);
      this.pendingBytes += data.length;
    }
    this.counters.bytesOut += data.length;
    if (this.backlog > this.highWaterMark) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /** Stop reading input (backpressure); applies to later peers too until resume(). */
  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resume(): void {
    this.paused = false;
    if (!this.held) this.socket?.resume();
  }

  /**
   * Stop reading because this input is ahead of the one it is compared with (fairness, not backpressure):
   * a separate flag, so ending backpressure does not undo it and vice versa.
   */
  hold(): void {
    this.held = true;
    this.socket?.pause();
  }

  unhold(): void {
    this.held = false;
    if (!this.paused) this.socket?.resume();
  }

  get isHeld(): boolean {
    return this.held;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket !== null) {
      this.closeReason = 'shutdown';
      this.socket.destroy();
    }
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.unlinkOnClose !== null) fs.rmSync(this.unlinkOnClose, { force: true });
  }

  private listen(): Promise<void> {
    const a = this.address;
    // Paused: takeOver() gives the connection a reader of its own before anything is read.
    // (pauseOnCreate is documented by Node but missing from @types/node 20's ServerOpts.)
    const server = net.createServer({ noDelay: true, pauseOnCreate: true } as net.ServerOpts);
    this.server = server;
    server.on('connection', (socket) => this.accept(socket));
    if (a.kind === 'unix') removeStaleUnixSocket(a.path);
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new Error(`${this.name}: cannot listen on ${formatSocketAddress(a)}: ${err.message}`));
      };
      server.once('error', onError);
      const onListening = (): void => {
        server.off('error', onError);
        server.on('error', (err) => this.emit('socket-error', err));
        if (a.kind === 'unix') this.unlinkOnClose = a.path;
        this.emit('ready');
        resolve();
      };
      if (a.kind === 'unix') server.listen(a.path, onListening);
      else server.listen(a.port, a.host, onListening);
    });
  }

  private accept(accepted: net.Socket): void {
    if (this.closing) {
      accepted.destroy();
      return;
    }
    const reader = new SlabReader(this.readSlabs);
    const socket = this.takeOver(accepted, reader);
    if (this.socket !== null) {
      this.counters.replaced++;
      this.closeReason = 'replaced';
      const old = this.socket;
      this.detach(old);
      old.destroy();
    }
    socket.on('error', (err) => {
      this.lastError = err.message;
    });
    socket.on('close', () => {
      if (this.socket === socket) this.detach(socket);
    });
    this.adopt(socket, socket === accepted ? null : reader);
  }

  /**
   * The accepted connection, reading into `reader`'s slabs. net.Server offers no `onread` for the sockets it
   * accepts, so the connection (Node's handle, still paused: pauseOnCreate) moves to a Socket made with one,
   * the way net.Server itself wraps a handle; the original object is destroyed without its handle, which
   * keeps the server's connection count right. Should a Node version lack the handle, the accepted socket is
   * used as it is (Node's own read buffers, the 'data' path).
   */
  private takeOver(accepted: net.Socket, reader: SlabReader): net.Socket {
    const internals = accepted as unknown as SocketInternals;
    const handle = internals._handle;
    if (handle === null || typeof handle !== 'object') {
      accepted.resume();
      return accepted;
    }
    internals._handle = null;
    const onread = this.onreadFor(reader, (): net.Socket => socket);
    const options = { handle, readable: true, writable: true, onread };
    const socket: net.Socket = new net.Socket(options as net.SocketConstructorOpts);
    accepted.destroy();
    return socket;
  }

  /** Node's `onread` option: reads go into `reader`'s slab regions, and each is decoded in place. */
  private onreadFor(reader: SlabReader, socket: () => net.Socket): net.OnReadOpts {
    return {
      buffer: () => reader.next(),
      callback: (n: number, region: Uint8Array): boolean => {
        this.onData(socket(), reader.chunk(region as Buffer, n));
        return true;
      },
    };
  }

  private connectFirst(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.once('connect', () => {
        this.emit('ready');
        resolve();
      });
      this.dial();
    });
  }

  private dial(): void {
    this.retryTimer = null;
    if (this.closing) return;
    const a = this.address;
    const reader = new SlabReader(this.readSlabs);
    const onread = this.onreadFor(reader, (): net.Socket => socket);
    const socket: net.Socket =
      a.kind === 'unix' ? net.connect({ path: a.path, onread }) : net.connect({ host: a.host, port: a.port, onread });
    let connected = false;
    socket.on('error', (err) => {
      this.lastError = err.message;
    });
    socket.once('connect', () => {
      connected = true;
      this.retryDelay = this.retryInitialMs;
      this.adopt(socket, reader);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.detach(socket);
      if (!connected) this.counters.connectFailures++;
      if (this.closing) return;
      this.retryTimer = setTimeout(() => this.dial(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
    });
  }

  /** `reader`: the slabs the socket reads into (its onread), or null when it emits 'data' instead. */
  private adopt(socket: net.Socket, reader: SlabReader | null): void {
    this.socket = socket;
    this.reader = reader;
    this.tracking.reader = reader;
    this.counters.connects++;
    this.lastError = null;
    this.closeReason = null;
    this.decoder.reset();
    if (this.address.kind === 'tcp') socket.setNoDelay(true);
    if (reader === null) socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('drain', () => this.maybeDrain());
    if (this.paused || this.held) socket.pause();
    const peer = this.address.kind === 'unix' ? this.address.path : `${socket.remoteAddress}:${socket.remotePort}`;
    // Output that waited for a peer goes out first, in order.
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const data of pending) socket.write(data);
    this.emit('connect', peer);
    this.maybeDrain();
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    this.counters.bytesIn += chunk.length;
    const sink = this.sink;
    if (sink === null) return;
    const status = this.decoder.push(chunk);
    sink.onChunkEnd();
    if (status === 'close') {
      this.closeReason = 'oversized';
      socket.destroy();
    }
  }

  private detach(socket: net.Socket): void {
    const lostBytes = socket.writableLength;
    this.counters.lostOutputBytes += lostBytes;
    this.counters.disconnects++;
    this.socket = null;
    this.reader?.close();
    this.reader = null;
    this.tracking.reader = null;
    const reason = this.closeReason ?? 'closed';
    this.closeReason = null;
    this.decoder.end();
    this.sink?.onChunkEnd();
    const info: DisconnectInfo = { reason, lostBytes, error: this.lastError };
    this.emit('disconnect', info);
  }

  private maybeDrain(): void {
    if (this.wantDrain && this.backlog <= this.highWaterMark) {
      this.wantDrain = false;
      this.emit('drain');
    }
  }
}

/** A unix socket file left by a previous run would make listen() fail with EADDRINUSE; anything else stays. */
function removeStaleUnixSocket(path: string): void {
  try {
    if (fs.statSync(path).isSocket()) fs.rmSync(path);
  } catch {
    // Absent: nothing to remove. Not a socket: listen() reports the clash with the path in the message.
  }
}
