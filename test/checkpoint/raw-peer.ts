import net from 'node:net';
import { once } from 'node:events';

// Real timers, captured before any test fakes them: a read's deadline passes in real time.
const { setTimeout: realSetTimeout, clearTimeout: realClearTimeout } = globalThis;

/**
 * A scripted peer over a real socket that knows nothing of the implementation: it reads and writes raw
 * big-endian u64 words, so tests see exactly the bytes on the wire.
 */
export class RawPeer {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  /** Every byte received, in order. */
  readonly received: Buffer[] = [];
  ended = false;
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawPeer(socket);
  }

  /** Listens on an ephemeral loopback port; `accepted` resolves with the first connection. */
  static async listen(): Promise<{ port: number; accepted: Promise<RawPeer>; server: net.Server }> {
    const server = net.createServer();
    const accepted = new Promise<RawPeer>((resolve) => server.once('connection', (s) => resolve(new RawPeer(s))));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { port: (server.address() as net.AddressInfo).port, accepted, server };
  }

  /** Reads exactly n bytes; rejects when the connection ends first or after timeoutMs. */
  async read(n: number, timeoutMs = 2000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < n) {
      if (this.ended) throw new Error(`connection ended with ${this.buffered.length}/${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes`);
      await new Promise<void>((resolve) => {
        const timer = realSetTimeout(resolve, left);
        this.waiter = () => {
          realClearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  async readWord(timeoutMs = 2000): Promise<bigint> {
    return (await this.read(8, timeoutMs)).readBigUInt64BE(0);
  }

  /** Reads the u64 length after SEND and the state. */
  async readState(timeoutMs = 2000): Promise<Buffer> {
    const length = Number(await this.readWord(timeoutMs));
    return Buffer.from(await this.read(length, timeoutMs));
  }

  send(...values: (number | bigint)[]): void {
    const buf = Buffer.alloc(8 * values.length);
    values.forEach((v, i) => buf.writeBigUInt64BE(BigInt(v), 8 * i));
    this.socket.write(buf);
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  sendState(state: Buffer): void {
    this.send(0x49, state.length);
    this.socket.write(state);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Whether the peer has closed the connection within timeoutMs. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((r) => realSetTimeout(() => r(false), timeoutMs)),
    ]);
  }
}

export function u64(value: number | bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(value));
  return buf;
}
