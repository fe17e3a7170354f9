import { connect, type Socket } from 'node:net';

/**
 * The test side of QEMU's chardev framing (reference section 2): u32be length, then u32be vnet_hdr_len when
 * vnet_hdr_support is on, then `length` bytes with the vnet header at their front. Deliberately independent
 * of proxy/ so the differential suite does not test colo-proxy's framing with colo-proxy's own code.
 */

/** One frame as it crossed the wire. `data` includes the vnet header, `vnetHdrLen` says how long it is. */
export interface WireFrame {
  data: Buffer;
  vnetHdrLen: number;
}

/** The bytes for one frame. `vnetHdrLen` given => the vnet field is written (the receiver has vnet on). */
export function encodeFrame(data: Buffer, vnetHdrLen?: number): Buffer {
  const withVnet = vnetHdrLen !== undefined;
  const head = Buffer.alloc(withVnet ? 8 : 4);
  head.writeUInt32BE(data.length, 0);
  if (withVnet) head.writeUInt32BE(vnetHdrLen, 4);
  return Buffer.concat([head, data]);
}

/** Plain framing of an ASCII control message (the Xen notify protocol). */
export function encodeText(text: string): Buffer {
  return encodeFrame(Buffer.from(text, 'ascii'));
}

/** Incremental decoder: feed chunks, get whole frames. Throws on nonsense: a test wants to hear about it. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly vnet: boolean) {}

  push(chunk: Buffer): WireFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: WireFrame[] = [];
    const headLength = this.vnet ? 8 : 4;
    while (this.pending.length >= headLength) {
      const length = this.pending.readUInt32BE(0);
      if (length > 69632) throw new Error(`framed peer sent length ${length} > 69632`);
      if (this.pending.length < headLength + length) break;
      const vnetHdrLen = this.vnet ? this.pending.readUInt32BE(4) : 0;
      frames.push({ data: Buffer.from(this.pending.subarray(headLength, headLength + length)), vnetHdrLen });
      this.pending = this.pending.subarray(headLength + length);
    }
    return frames;
  }
}

/** A promise that a bounded wait resolves or rejects with a message naming what it waited for. */
export function bounded<T>(
  what: string,
  timeoutMs: number,
  start: (done: (value: T) => void, fail: (why: string) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let cancel: () => void = () => {};
    const timer = setTimeout(() => {
      cancel();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    cancel = start(
      (value) => {
        clearTimeout(timer);
        cancel();
        resolve(value);
      },
      (why) => {
        clearTimeout(timer);
        cancel();
        reject(new Error(`${why} while waiting for ${what}`));
      },
    );
  });
}

/**
 * One framed connection to a compare process. Every frame received is kept in `frames`, in arrival order;
 * waits are on the arrival event with a bounded timeout, never on a sleep.
 */
export class FramedConnection {
  readonly frames: WireFrame[] = [];
  /** performance.now() at each frame's arrival, parallel to `frames`. */
  readonly arrivals: number[] = [];
  private readonly decoder: FrameDecoder;
  private readonly waiters = new Set<() => void>();
  private closedWith: Error | null = null;
  closed = false;

  private constructor(
    readonly name: string,
    readonly socket: Socket,
    readonly vnet: boolean,
  ) {
    this.decoder = new FrameDecoder(vnet);
    socket.on('data', this.onData);
    socket.on('error', (err) => {
      this.closedWith ??= err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      const now = performance.now();
      for (const frame of this.decoder.push(chunk)) {
        this.frames.push(frame);
        this.arrivals.push(now);
      }
    } catch (err) {
      this.closedWith = err as Error;
      this.socket.destroy();
    }
    this.wake();
  };

  /** Stop decoding and keeping frames: the caller reads the socket itself (the benchmark counts bytes). */
  detach(): Socket {
    this.socket.off('data', this.onData);
    return this.socket;
  }

  /**
   * Connect to HOST:PORT, retrying refused connections (the peer may still be starting) until `timeoutMs`.
   * `vnet` = this connection's frames carry the vnet field in both directions.
   */
  static async open(name: string, port: number, vnet: boolean, timeoutMs = 10_000): Promise<FramedConnection> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port }, () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        socket.setNoDelay(true);
        return new FramedConnection(name, socket, vnet);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) {
          throw new Error(`${name}: cannot connect to 127.0.0.1:${port}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Write frames in one write (order is the caller's order). */
  send(frames: Buffer[], vnetHdrLen = 0): void {
    this.sendRaw(Buffer.concat(frames.map((f) => encodeFrame(f, this.vnet ? vnetHdrLen : undefined))));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  sendText(text: string): void {
    this.sendRaw(encodeText(text));
  }

  /** Resolve when `predicate` holds over the received frames (checked now and on each arrival). */
  waitUntil(what: string, predicate: (frames: WireFrame[]) => boolean, timeoutMs = 5_000): Promise<void> {
    if (predicate(this.frames)) return Promise.resolve();
    return bounded<void>(`${this.name}: ${what}`, timeoutMs, (done, fail) => {
      const check = (): void => {
        if (predicate(this.frames)) done();
        else if (this.closed) fail(`connection closed (${this.closedWith?.message ?? 'by the peer'})`);
      };
      this.waiters.add(check);
      return () => this.waiters.delete(check);
    });
  }

  waitForCount(count: number, timeoutMs = 5_000): Promise<void> {
    return this.waitUntil(`${count} frames`, (f) => f.length >= count, timeoutMs);
  }

  /** Resolve when the peer closes the connection. */
  waitClosed(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return bounded<void>(`${this.name}: close`, timeoutMs, (done) => {
      const check = (): void => {
        if (this.closed) done();
      };
      this.waiters.add(check);
      return () => this.waiters.delete(check);
    });
  }

  get error(): Error | null {
    return this.closedWith;
  }

  close(): void {
    this.socket.destroy();
  }
}
