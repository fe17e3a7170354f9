import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import { DOWNLOAD_REPLY, RequestStream, isStreamPosition, type StreamPosition } from './guest-streams.js';

/**
 * The lab guest: a small line-based key-value service standing in for a VM's application in tests.
 * Requests, one per line (LF or CRLF):
 *   SET k v     -> OK            (v is the rest of the line)
 *   GET k       -> v | NIL
 *   INCR k      -> the new integer (a missing key counts as 0)
 *   DEL k       -> 1 | 0
 *   DOWNLOAD n  -> exactly n bytes of downloadPattern(0, n), no line ending
 *   PING -> PONG, QUIT -> BYE (then the connection closes)
 * The application state (the key-value map, and where each connection's requests stand: ./guest-streams.ts)
 * can be saved and loaded, and the service suspended: while
 * suspended it reads requests but answers none (a download in progress stops writing); on resume the held
 * requests are answered in order. In nondeterministic mode every line reply gets ` ~TOKEN` appended, a fresh
 * random token each time, so two guests with the same state answer differently (downloads stay exact so
 * failover tests can check them byte for byte).
 */

export interface GuestStats {
  connections: number;
  requests: number;
  badRequests: number;
  heldRequests: number;
  downloadBytes: number;
  suspended: boolean;
  nondeterministic: boolean;
  keys: number;
}

export interface LabGuestOptions {
  nondeterministic?: boolean;
  /** A request line longer than this is refused and its connection closed. */
  maxLineBytes?: number;
  logger?: Logger;
}

export type LoadError = 'not-json' | 'bad-format';

const STATE_FORMAT = 'colo-lab-guest/1';
const DEFAULT_MAX_LINE = 64 * 1024;
/** Download bodies go out in slices this size, so a suspend stops a download within one slice. */
const DOWNLOAD_SLICE = 16 * 1024;
/** While suspended, a connection stops reading once it holds this many bytes of requests. */
const HELD_BYTES_LIMIT = 1 << 20;
const RECORD = 16;
/** Queue marker for an overlong line; it contains a newline, so no real request line can equal it. */
const TOO_LONG = '\n(line too long)';
/**
 * A record's offset splits into the block (offset / 10000, the first 11 digits) and the offset within the
 * block (the last 4 digits). 10000 bytes is 625 whole records, so within a block the last 4 digits and the
 * newline repeat in a fixed table (LOW_WORDS) and only the 11 leading digits change, once per block.
 */
const HIGH_DIGITS = 11;
const RECORDS_PER_BLOCK = 625;
const LOW_WORDS = (() => {
  const table = Buffer.alloc(RECORDS_PER_BLOCK * RECORD);
  for (let r = 0; r < RECORDS_PER_BLOCK; r++) {
    table.write(`${String(r * RECORD).padStart(4, '0')}\n`, r * RECORD + HIGH_DIGITS, 'latin1');
  }
  return new Uint32Array(table.buffer, table.byteOffset, table.length / 4);
})();

/**
 * The download body: 16-byte records, each the record's own byte offset as 15 zero-padded decimal digits
 * and a newline, cut to length. A lost, repeated or shifted byte range shows up at a readable offset.
 */
export function downloadPattern(offset: number, length: number): Buffer {
  const firstRecord = Math.floor(offset / RECORD);
  const records = Math.ceil((offset + length) / RECORD) - firstRecord;
  // Whole records into a word-aligned scratch buffer, then a view of the requested window.
  const scratch = Buffer.allocUnsafeSlow(records * RECORD);
  const words = new Uint32Array(scratch.buffer, scratch.byteOffset, records * 4);
  const high = new Uint32Array(4);
  const highBytes = Buffer.from(high.buffer);
  let block = -1;
  for (let k = 0; k < records; k++) {
    const record = firstRecord + k;
    const inBlock = record % RECORDS_PER_BLOCK;
    if (block !== record - inBlock) {
      block = record - inBlock;
      highBytes.fill(0);
      highBytes.write(String(block / RECORDS_PER_BLOCK).padStart(HIGH_DIGITS, '0'), 'latin1');
    }
    // Four word stores per record instead of sixteen byte stores: this runs for every byte of a download.
    words[k * 4] = high[0];
    words[k * 4 + 1] = high[1];
    words[k * 4 + 2] = high[2] | LOW_WORDS[inBlock * 4 + 2];
    words[k * 4 + 3] = LOW_WORDS[inBlock * 4 + 3];
  }
  const skip = offset - firstRecord * RECORD;
  return scratch.subarray(skip, skip + length);
}

export class LabGuest extends EventEmitter {
  private readonly kv = new Map<string, string>();
  private readonly connections = new Set<GuestConnection>();
  private readonly log: Logger;
  readonly maxLineBytes: number;
  private server: Server | null = null;
  private resumeWaiters: Array<() => void> = [];
  nondeterministic: boolean;
  suspended = false;
  readonly stats = { connections: 0, requests: 0, badRequests: 0, heldRequests: 0, downloadBytes: 0 };

  constructor(options: LabGuestOptions = {}) {
    super();
    this.nondeterministic = options.nondeterministic ?? false;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE;
    this.log = options.logger ?? silentLogger;
  }

  /** Starts the service on host:port (port 0 picks one); resolves with the bound address. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    server.listen(port, host);
    await once(server, 'listening');
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    this.release();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  suspend(): void {
    if (this.suspended) return;
    this.suspended = true;
    this.log.info('lab guest suspended');
    this.emit('suspended');
  }

  resume(): void {
    if (!this.suspended) return;
    this.suspended = false;
    this.log.info('lab guest resumed');
    this.release();
    for (const connection of this.connections) connection.pump();
    this.emit('resumed');
  }

  /** The state: every key and value in insertion order, and where each connection stands (./guest-streams.ts). */
  save(): Buffer {
    const streams = [...this.connections].map((connection) => connection.stream.position());
    return Buffer.from(JSON.stringify({ format: STATE_FORMAT, kv: [...this.kv], streams }), 'utf8');
  }

  /** Replaces the whole application state; on a bad state nothing changes and the reason is returned. */
  load(state: Buffer): LoadError | null {
    let parsed: unknown;
    try {
      parsed = JSON.parse(state.toString('utf8'));
    } catch {
      return 'not-json';
    }
    const saved = parsed as { format?: unknown; kv?: unknown; streams?: unknown } | null;
    const pairs = saved?.kv;
    if (saved?.format !== STATE_FORMAT || !Array.isArray(pairs)) return 'bad-format';
    const valid = pairs.every(
      (pair: unknown) =>
        Array.isArray(pair) && pair.length === 2 && typeof pair[0] === 'string' && typeof pair[1] === 'string',
    );
    // streams is optional: a state saved before it existed still loads.
    const streams = saved.streams ?? [];
    if (!valid || !Array.isArray(streams) || !streams.every(isStreamPosition)) return 'bad-format';
    this.kv.clear();
    for (const [key, value] of pairs as Array<[string, string]>) this.kv.set(key, value);
    const positions = new Map((streams as StreamPosition[]).map((p) => [p.peer, p]));
    for (const connection of this.connections) {
      const primary = positions.get(connection.stream.peer);
      if (primary === undefined) continue;
      const again = connection.stream.adopt(primary);
      if (again === null) {
        this.log.warn(
          { peer: primary.peer, answered: connection.stream.answered, primaryAnswered: primary.answered },
          'lab guest: a connection is further from the loaded state than its history reaches; left as it is',
        );
      } else for (const line of again) this.execute(line, false);
    }
    this.emit('loaded', this.kv.size);
    return null;
  }

  status(): GuestStats {
    return {
      ...this.stats,
      suspended: this.suspended,
      nondeterministic: this.nondeterministic,
      keys: this.kv.size,
    };
  }

  /** Resolves at the next resume (immediately when running). */
  whenRunning(): Promise<void> {
    if (!this.suspended) return Promise.resolve();
    return new Promise((resolve) => this.resumeWaiters.push(resolve));
  }

  /**
   * Answers one request line; null means "no reply" (empty line). `counted` false: a request applied again
   * after a load (./guest-streams.ts), which the statistics already hold.
   */
  execute(line: string, counted = true): string | null {
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const rest = space === -1 ? '' : line.slice(space + 1);
    const key = rest.split(' ', 1)[0];
    if (counted) this.stats.requests++;
    switch (verb) {
      case 'SET': {
        if (key === '' || rest.length === key.length) return this.bad('usage: SET key value');
        this.kv.set(key, rest.slice(key.length + 1));
        return this.reply('OK');
      }
      case 'GET':
        if (key === '') return this.bad('usage: GET key');
        return this.reply(this.kv.get(key) ?? 'NIL');
      case 'INCR': {
        if (key === '') return this.bad('usage: INCR key');
        const current = this.kv.get(key) ?? '0';
        if (!/^-?\d{1,15}$/.test(current)) return this.bad('value is not an integer');
        const next = String(Number(current) + 1);
        this.kv.set(key, next);
        return this.reply(next);
      }
      case 'DEL':
        if (key === '') return this.bad('usage: DEL key');
        return this.reply(this.kv.delete(key) ? '1' : '0');
      case 'PING':
        return this.reply('PONG');
      case 'QUIT':
        return 'BYE';
      default:
        return this.bad(`unknown command "${verb.slice(0, 32)}"`);
    }
  }

  private reply(text: string): string {
    return this.nondeterministic ? `${text} ~${randomBytes(4).toString('hex')}` : text;
  }

  private bad(message: string): string {
    this.stats.badRequests++;
    this.emit('bad-request', message);
    return `ERR ${message}`;
  }

  private release(): void {
    const waiters = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const wake of waiters) wake();
  }

  private accept(socket: Socket): void {
    this.stats.connections++;
    const connection = new GuestConnection(this, socket);
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'lab guest client error'));
  }
}

/** One client: splits its bytes into request lines and answers them in order, one at a time. */
class GuestConnection {
  readonly stream: RequestStream;
  private partial = '';
  private readonly queue: string[] = [];
  private queuedBytes = 0;
  private busy = false;
  private refused = false;

  constructor(
    private readonly guest: LabGuest,
    readonly socket: Socket,
  ) {
    this.stream = new RequestStream(`${socket.remoteAddress}:${socket.remotePort}`);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  private receive(chunk: Buffer): void {
    if (this.refused) return;
    // latin1 maps bytes 1:1 to chars, so any byte sequence (UTF-8 included) round-trips through the map.
    const text = this.partial + chunk.toString('latin1');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.length > this.guest.maxLineBytes) return this.refuse();
      this.queue.push(line.endsWith('\r') ? line.slice(0, -1) : line);
      this.queuedBytes += line.length;
      if (this.guest.suspended) {
        this.guest.stats.heldRequests++;
        this.guest.emit('held', line);
      }
    }
    if (this.partial.length > this.guest.maxLineBytes) return this.refuse();
    // Like a suspended VM's full receive buffer: stop reading; TCP flow control holds the client.
    if (this.guest.suspended && this.queuedBytes > HELD_BYTES_LIMIT) this.socket.pause();
    this.pump();
  }

  /** An overlong line: the requests before it are still answered, then an ERR, then the connection closes. */
  private refuse(): void {
    this.refused = true;
    this.partial = '';
    this.socket.pause();
    this.guest.stats.badRequests++;
    this.guest.emit('bad-request', 'line too long');
    this.queue.push(TOO_LONG);
    this.pump();
  }

  /** Answers queued requests while the guest runs; a download holds the queue until its last byte. */
  pump(): void {
    if (!this.refused && this.socket.isPaused() && !this.guest.suspended) this.socket.resume();
    while (!this.busy && !this.guest.suspended && this.queue.length > 0 && !this.socket.destroyed) {
      const line = this.queue.shift() as string;
      this.queuedBytes -= line.length;
      const download = /^DOWNLOAD (\d{1,16})$/i.exec(line);
      if (download) {
        this.guest.stats.requests++;
        this.stream.record(line, DOWNLOAD_REPLY);
        this.busy = true;
        this.download(Number(download[1])).then(
          () => {
            this.busy = false;
            this.pump();
          },
          () => this.socket.destroy(),
        );
        return;
      }
      if (line === '') continue;
      if (line === TOO_LONG) {
        this.socket.end(`ERR line longer than ${this.guest.maxLineBytes} bytes\n`);
        return;
      }
      const owed = this.stream.takeOwed();
      if (owed !== undefined) this.guest.stats.requests++;
      const reply = owed === undefined ? this.guest.execute(line) : owed;
      this.stream.record(line, reply);
      if (reply === 'BYE') {
        this.socket.end('BYE\n', 'latin1');
        return;
      }
      if (reply !== null) this.socket.write(`${reply}\n`, 'latin1');
    }
  }

  private async download(total: number): Promise<void> {
    for (let offset = 0; offset < total && !this.socket.destroyed;) {
      if (this.guest.suspended) await this.guest.whenRunning();
      const length = Math.min(DOWNLOAD_SLICE, total - offset);
      const flowing = this.socket.write(downloadPattern(offset, length));
      offset += length;
      this.guest.stats.downloadBytes += length;
      if (!flowing) await Promise.race([once(this.socket, 'drain'), once(this.socket, 'close')]);
    }
  }
}
