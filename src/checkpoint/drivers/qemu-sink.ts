import { once } from 'node:events';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';

/**
 * Where the primary's QEMU migrates a stopped VM: a unix socket the driver listens on (mode 0600 in a
 * private work directory). Each capture takes the next connection and gathers everything QEMU writes until
 * it closes, into ONE buffer that is kept and regrown from checkpoint to checkpoint: first-touch page faults
 * dominate a large copy (docs/protocol.md), so a fresh buffer per state would cost more than the copy.
 */
export class StateSink {
  private server: Server | null = null;
  private buffer = Buffer.alloc(0);
  private waiting: ((socket: Socket) => void) | null = null;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {}

  async listen(): Promise<void> {
    if (this.server) return;
    const dir = this.path.slice(0, this.path.lastIndexOf('/')) || '/';
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await rm(this.path, { force: true });
    const server = createServer((socket) => {
      const waiting = this.waiting;
      this.waiting = null;
      if (waiting) waiting(socket);
      else socket.destroy(); // nobody asked for a state: not QEMU's migration, or a late one
    });
    server.listen(this.path);
    await once(server, 'listening');
    await chmod(this.path, 0o600);
    this.server = server;
  }

  /**
   * The bytes of the next connection, up to its end. The result is a view of the reused buffer: valid until
   * the next capture (the coordinator has sent it by then: the next checkpoint starts after RECEIVED or
   * after the connection failed). `abort` ends the wait with its error.
   */
  capture(deadline: number, abort: Promise<never>): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let length = 0;
      let socket: Socket | null = null;
      let settled = false;
      const finish = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiting = null;
        if (error) {
          socket?.destroy();
          reject(error);
        } else {
          resolve(this.buffer.subarray(0, length));
        }
      };
      const timer = setTimeout(
        () => finish(new Error(`no complete state on ${this.path} by the deadline (${length} bytes so far)`)),
        Math.max(1, deadline - performance.now()),
      );
      abort.catch((err: Error) => finish(err));
      this.waiting = (accepted) => {
        socket = accepted;
        accepted.on('data', (chunk: Buffer) => {
          if (settled) return;
          if (length + chunk.length > this.maxBytes) {
            finish(new Error(`the state is larger than the maximum state size of ${this.maxBytes} bytes`));
            return;
          }
          this.reserve(length, length + chunk.length);
          chunk.copy(this.buffer, length);
          length += chunk.length;
        });
        accepted.on('end', () => finish(null));
        accepted.on('error', (err) => finish(new Error(`migration socket ${this.path}: ${err.message}`)));
        accepted.on('close', () => finish(new Error(`migration socket ${this.path} closed before its end`)));
      };
    });
  }

  /** Grows the buffer (doubling, capped at maxBytes) keeping its first `used` bytes. */
  private reserve(used: number, needed: number): void {
    if (needed <= this.buffer.length) return;
    const size = Math.min(Math.max(needed, this.buffer.length * 2, 1 << 20), this.maxBytes);
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, used);
    this.buffer = grown;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.waiting = null;
    if (server) {
      server.close();
      await rm(this.path, { force: true });
    }
  }
}
