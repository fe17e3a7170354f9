import net from 'node:net';
import { once } from 'node:events';
import { FrameDecoder } from '../../proxy/ports/framed.js';
import type { FrameSink, FramingRejectReason } from '../../proxy/port.js';

/** Collects what a decoder hands out, for assertions. */
export class CollectingSink implements FrameSink {
  readonly frames: { frame: Buffer; start: number }[] = [];
  readonly rejects: { reason: FramingRejectReason; length: number }[] = [];
  chunkEnds = 0;
  private waiters: { count: number; resolve: () => void }[] = [];

  onFrame(frame: Buffer, start: number): void {
    this.frames.push({ frame: Buffer.from(frame), start });
    this.wake();
  }
  onReject(reason: FramingRejectReason, length: number): void {
    this.rejects.push({ reason, length });
    this.wake();
  }
  onChunkEnd(): void {
    this.chunkEnds++;
  }

  /** Resolves once frames + rejects reach `count`; fails after `timeoutMs`. */
  waitFor(count: number, timeoutMs = 15_000): Promise<void> {
    if (this.frames.length + this.rejects.length >= count) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.waiters.push({ count, resolve })),
      timeoutMs,
      `waiting for ${count} frames/rejects`,
    );
  }

  private wake(): void {
    const have = this.frames.length + this.rejects.length;
    this.waiters = this.waiters.filter((w) => {
      if (have < w.count) return true;
      w.resolve();
      return false;
    });
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 5 ms (state with no event to wait on, e.g. a counter); fails after `timeoutMs`. */
export function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (condition()) resolve();
        else timer = setTimeout(check, 5);
      };
      let timer = setTimeout(check, 0);
      void timer;
    }),
    timeoutMs,
    what,
  );
}

/** `u32 length [u32 vnet] bytes` for a test peer. */
export function frameOf(payload: Buffer | string, vnetLength: number | null = null): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(vnetLength === null ? 4 : 8);
  header.writeUInt32BE(body.length, 0);
  if (vnetLength !== null) header.writeUInt32BE(vnetLength, 4);
  return Buffer.concat([header, body]);
}

/** A raw length prefix with no body (zero-length and oversized cases). */
export function lengthOnly(length: number, vnetLength: number | null = null): Buffer {
  const header = Buffer.alloc(vnetLength === null ? 4 : 8);
  header.writeUInt32BE(length, 0);
  if (vnetLength !== null) header.writeUInt32BE(vnetLength, 4);
  return header;
}

/** A test peer on a real socket that decodes what it receives. */
export class Peer {
  readonly sink = new CollectingSink();
  readonly decoder: FrameDecoder;
  closed: Promise<unknown>;
  private constructor(
    readonly socket: net.Socket,
    vnetHdr: boolean,
  ) {
    this.decoder = new FrameDecoder(vnetHdr, this.sink);
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', resolve));
  }

  static async connect(target: { port: number; host?: string } | { path: string }, vnetHdr = false): Promise<Peer> {
    const socket = net.connect(target as net.NetConnectOpts);
    await withTimeout(once(socket, 'connect'), 5000, `connecting to ${JSON.stringify(target)}`);
    return new Peer(socket, vnetHdr);
  }

  static adopt(socket: net.Socket, vnetHdr = false): Peer {
    return new Peer(socket, vnetHdr);
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  texts(): string[] {
    return this.sink.frames.map((f) => f.frame.toString('latin1'));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Port number from an "HOST:PORT" description. */
export function portOf(described: string): number {
  return Number(described.slice(described.lastIndexOf(':') + 1));
}
