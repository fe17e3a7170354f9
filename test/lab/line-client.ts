import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** A test client for the lab guest: collects every byte it receives and waits for them with a bound. */
export class LineClient {
  private chunks: Buffer[] = [];
  /** Bytes received so far (cheap to read while a large download streams in). */
  length = 0;
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** localPort: connect from this port (a second connection from the same address and port, to another guest). */
  static async open(port: number, host = '127.0.0.1', localPort?: number): Promise<LineClient> {
    const socket = connect({ port, host, localAddress: localPort === undefined ? undefined : host, localPort });
    await once(socket, 'connect');
    return new LineClient(socket);
  }

  /** Everything received so far, as one Buffer (copied once per call, so check `length` in loops). */
  get received(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  text(): string {
    return this.received.toString('latin1');
  }

  /** Resolves once `done()` holds for what has arrived; rejects after boundMs with what arrived so far. */
  async until(done: (client: LineClient) => boolean, boundMs = 5000): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (!done(this)) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) {
        if (done(this)) return;
        throw new Error(
          `client wait ended (${this.closed ? 'closed' : 'timed out'}); got ${JSON.stringify(this.text().slice(-200))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for `count` complete lines and returns them. */
  async lines(count: number, boundMs = 5000): Promise<string[]> {
    await this.until((c) => c.text().split('\n').length - 1 >= count, boundMs);
    return this.text().split('\n').slice(0, count);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
