import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildUdp } from './wire-build.js';
import { bounded, encodeFrame, FramedConnection, type WireFrame } from './framed-client.js';

/**
 * Starts the two implementations of colo-compare that the differential suite and bench:qemu drive side by
 * side: Debian's QEMU running colo-compare standalone (reference section 8) and `colo-proxy compare`. Both
 * listen on four loopback TCP sockets (pri, sec, out, notify) that the test connects to.
 */

export type Implementation = 'qemu' | 'ours';

/** colo-compare's tunables; each implementation gets the same values under its own option names. */
export interface CompareSettings {
  compareTimeoutMs?: number;
  expiredScanCycleMs?: number;
  maxQueueSize?: number;
  vnet?: boolean;
  /** Ours only: serve /metrics and /stats on this loopback port. */
  metricsPort?: number;
  /** Extra node options for ours (e.g. --cpu-prof); ignored for QEMU. */
  nodeArgs?: string[];
}

export interface ComparePorts {
  pri: number;
  sec: number;
  out: number;
  notify: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CompareProcess {
  readonly impl: Implementation;
  readonly ports: ComparePorts;
  readonly child: ChildProcess;
  /** Everything the process wrote on stderr so far (QEMU's errors, our pino lines). */
  stderr(): string;
  /** Resolves when the process exits (on its own or by stop()). */
  readonly exited: Promise<ExitStatus>;
  /** Null while running. */
  exitStatus(): ExitStatus | null;
  /** Resolves when stderr contains `needle` (bounded; rejects if the process exits first). */
  waitForStderr(needle: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const qemuBinary = process.env.COLO_QEMU ?? 'qemu-system-x86_64';

/**
 * `count` distinct free loopback ports: all are bound at once (so they differ) and then released. Another
 * process may take one in between; start() retries with fresh ports when a bind fails.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(server);
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function qemuArgs(ports: ComparePorts, qmpPort: number, s: CompareSettings): string[] {
  const chardev = (id: string, port: number): string[] => [
    '-chardev',
    `socket,id=${id},host=127.0.0.1,port=${port},server=on,wait=off`,
  ];
  const compare = [
    'colo-compare,id=comp0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iothread1,notify_dev=notify',
    s.compareTimeoutMs !== undefined ? `compare_timeout=${s.compareTimeoutMs}` : '',
    s.expiredScanCycleMs !== undefined ? `expired_scan_cycle=${s.expiredScanCycleMs}` : '',
    s.maxQueueSize !== undefined ? `max_queue_size=${s.maxQueueSize}` : '',
    s.vnet ? 'vnet_hdr_support=on' : '',
  ]
    .filter((part) => part !== '')
    .join(',');
  return [
    ...'-M none -nodefaults -nographic -display none -object iothread,id=iothread1'.split(' '),
    ...['-qmp', `tcp:127.0.0.1:${qmpPort},server=on,wait=off`],
    ...chardev('pri', ports.pri),
    ...chardev('sec', ports.sec),
    ...chardev('out', ports.out),
    ...chardev('notify', ports.notify),
    '-object',
    compare,
  ];
}

function oursArgs(ports: ComparePorts, s: CompareSettings): string[] {
  const listen = (flag: string, port: number): string[] => [flag, `listen:127.0.0.1:${port}`];
  const args = [
    ...['bin/colo-proxy.js', 'compare'],
    ...listen('--primary-in', ports.pri),
    ...listen('--secondary-in', ports.sec),
    ...listen('--outdev', ports.out),
    ...listen('--notify-dev', ports.notify),
  ];
  if (s.compareTimeoutMs !== undefined) args.push('--compare-timeout', String(s.compareTimeoutMs));
  if (s.expiredScanCycleMs !== undefined) args.push('--expired-scan-cycle', String(s.expiredScanCycleMs));
  if (s.maxQueueSize !== undefined) args.push('--max-queue-size', String(s.maxQueueSize));
  if (s.vnet) args.push('--vnet-hdr-support');
  if (s.metricsPort !== undefined) args.push('--metrics', `127.0.0.1:${s.metricsPort}`);
  return args;
}

function launch(impl: Implementation, ports: ComparePorts, qmpPort: number, s: CompareSettings): ChildProcess {
  if (impl === 'qemu') {
    // cwd: a QEMU that aborts (the zero-length frame) may leave a core file behind; not in the checkout.
    return spawn(qemuBinary, qemuArgs(ports, qmpPort, s), { cwd: tmpdir(), stdio: ['ignore', 'ignore', 'pipe'] });
  }
  return spawn(process.execPath, [...(s.nodeArgs ?? []), ...oursArgs(ports, s)], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, COLO_LOG_LEVEL: process.env.COLO_LOG_LEVEL ?? 'info' },
  });
}

/**
 * QEMU is started when its QMP greeting arrives: QMP is created after every -chardev and -object, so by
 * then the four sockets listen. A QEMU that could not bind exits instead ("Address already in use") and
 * start() retries on other ports. Ours is started when it logs its ready line.
 */
function qmpGreeting(
  port: number,
  exited: Promise<ExitStatus>,
  stderr: () => string,
  timeoutMs: number,
): Promise<void> {
  return bounded<void>('QEMU QMP greeting', timeoutMs, (done, fail) => {
    let socket: Socket | null = null;
    let stopped = false;
    const attempt = (): void => {
      if (stopped) return;
      socket = connect({ host: '127.0.0.1', port });
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        if (text.includes('"QMP"')) done();
      });
      socket.on('error', () => {
        socket?.destroy();
        if (!stopped) setTimeout(attempt, 20);
      });
    };
    void exited.then((status) => fail(`qemu exited at start (${JSON.stringify(status)}): ${stderr()}`));
    attempt();
    return () => {
      stopped = true;
      socket?.destroy();
    };
  });
}

async function startOnce(impl: Implementation, s: CompareSettings, readyTimeoutMs: number): Promise<CompareProcess> {
  const [pri, sec, out, notify, qmp] = await freePorts(5);
  const ports = { pri, sec, out, notify };
  const child = launch(impl, ports, qmp, s);
  let stderr = '';
  let status: ExitStatus | null = null;
  const stderrWaiters = new Set<() => void>();
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      for (const w of stderrWaiters) w();
      resolve(status);
    });
    child.once('error', (err) => {
      stderr += `spawn error: ${err.message}\n`;
      status = { code: -1, signal: null };
      for (const w of stderrWaiters) w();
      resolve(status);
    });
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    for (const w of stderrWaiters) w();
  });
  const waitForStderr = (needle: string | RegExp, timeoutMs = 5_000): Promise<void> =>
    bounded<void>(`${impl} stderr ${String(needle)}`, timeoutMs, (done, fail) => {
      const check = (): void => {
        if (typeof needle === 'string' ? stderr.includes(needle) : needle.test(stderr)) done();
        else if (status !== null) fail(`${impl} exited (${JSON.stringify(status)}): ${stderr.slice(-2000)}`);
      };
      stderrWaiters.add(check);
      check();
      return () => stderrWaiters.delete(check);
    });
  const proc: CompareProcess = {
    impl,
    ports,
    child,
    stderr: () => stderr,
    exited,
    exitStatus: () => status,
    waitForStderr,
    stop: async () => {
      if (status !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
  if (impl === 'qemu') {
    await qmpGreeting(qmp, exited, () => stderr, readyTimeoutMs).catch(async (err: unknown) => {
      await proc.stop();
      throw err;
    });
  } else {
    await waitForStderr(/colo-proxy compare: ready|"msg":"ready"/, readyTimeoutMs).catch(async (err: unknown) => {
      await proc.stop();
      throw err;
    });
  }
  return proc;
}

/** Start one implementation on fresh loopback ports; retries twice when a port was taken meanwhile. */
export async function startCompare(
  impl: Implementation,
  settings: CompareSettings = {},
  readyTimeoutMs = 20_000,
): Promise<CompareProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(impl, settings, readyTimeoutMs);
    } catch (err) {
      lastError = err;
      if (!String(err).includes('in use')) break;
    }
  }
  throw lastError;
}

/**
 * Starts an implementation and opens a session on it. Once, on a loaded machine, QEMU kept its outdev
 * chardev unconnected through the whole opening: every barrier it released ended in "colo send primary
 * packet failed" and none reached the harness in 12.6 s. That is the black box failing to start, not a
 * behaviour under test, so a QEMU whose session does not open is replaced by a fresh one, once, and the
 * harness says so on stderr. Ours gets no second chance: its opening is part of what the suites test.
 */
export async function openCompare(
  impl: Implementation,
  settings: CompareSettings = {},
  vnetHeader: Buffer = defaultVnetHeader,
): Promise<CompareSession> {
  for (let attempt = 0; ; attempt++) {
    const proc = await startCompare(impl, settings);
    try {
      return await CompareSession.open(proc, settings, vnetHeader);
    } catch (err) {
      const stderr = proc.stderr().slice(-3000);
      await proc.stop();
      if (impl !== 'qemu' || attempt >= 1) {
        const message = `${impl}: session did not open: ${(err as Error).message}\n--- stderr ---\n${stderr}`;
        throw new Error(message, { cause: err });
      }
      process.stderr.write(`qemu: session did not open (${(err as Error).message}); starting a fresh QEMU\n`);
    }
  }
}

export const XEN = {
  INIT: 'COLO_USERSPACE_PROXY_INIT',
  INIT_REPLY: 'COLO_COMPARE_GET_XEN_INIT',
  DO_CHECKPOINT: 'DO_CHECKPOINT',
  CHECKPOINT: 'COLO_CHECKPOINT',
} as const;

export type InputSide = 'pri' | 'sec';

/** virtio_net_hdr_mrg_rxbuf (12 bytes): no offload, num_buffers 1. Neither implementation interprets it. */
export const defaultVnetHeader = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** A separate UDP flow whose matched pairs prove both inputs were processed up to that point. */
function barrierFrame(n: number): Buffer {
  return buildUdp({ src: '192.0.2.250', dst: '192.0.2.251', srcPort: 47000, dstPort: 47001, payload: `barrier ${n}` });
}

const text = (frame: WireFrame): string => frame.data.toString('latin1');

/**
 * The four connections to one compare process, plus the barriers that make "it has processed this" an
 * event rather than a sleep:
 * - barrier(): a matched pair on a flow of its own, sent after everything so far; both inputs are read in
 *   order, so its release means every earlier frame on pri and sec was enqueued and compared.
 * - notifyBarrier(): COLO_USERSPACE_PROXY_INIT, answered in order, so its reply follows every DO_CHECKPOINT
 *   sent before it and proves every earlier notify message was handled.
 */
export class CompareSession {
  private barriers = 0;
  private requestBaseline = 0;
  private readonly barrierBytes = new Set<string>();

  private constructor(
    readonly proc: CompareProcess,
    public pri: FramedConnection,
    public sec: FramedConnection,
    readonly out: FramedConnection,
    readonly notify: FramedConnection,
    /** The vnet header put in front of every input frame (empty, and no vnet field, when vnet is off). */
    readonly vnetHeader: Buffer,
    private readonly notifyVnetField: boolean,
  ) {}

  /**
   * Connect out and notify, do the Xen handshake, then connect pri and sec and pass one barrier (retried:
   * QEMU accepts `out` asynchronously and drops what it releases before that).
   */
  static async open(
    proc: CompareProcess,
    settings: CompareSettings = {},
    vnetHeader: Buffer = defaultVnetHeader,
  ): Promise<CompareSession> {
    const vnet = settings.vnet === true;
    const { ports } = proc;
    const out = await FramedConnection.open(`${proc.impl}/out`, ports.out, vnet);
    // QEMU's notify input parser inherits vnet_hdr_support (reference section 3, quirk); ours never does.
    const notify = await FramedConnection.open(`${proc.impl}/notify`, ports.notify, false);
    const pri = await FramedConnection.open(`${proc.impl}/pri`, ports.pri, vnet);
    const sec = await FramedConnection.open(`${proc.impl}/sec`, ports.sec, vnet);
    const header = vnet ? vnetHeader : Buffer.alloc(0);
    const session = new CompareSession(proc, pri, sec, out, notify, header, vnet && proc.impl === 'qemu');
    await session.notifyBarrier();
    // QEMU accepts `out` asynchronously and loses what it releases before that: retry the first barrier
    // with growing timeouts until one comes through.
    let attempt = 0;
    for (; ; attempt++) {
      try {
        await session.barrier(200 * 2 ** attempt);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
    if (attempt > 0) {
      // A retried barrier may merely have been slow: QEMU then holds two barrier primaries and, matching
      // newest-first, may have crossed them and asked for a checkpoint. Flush that away so no scenario
      // starts with held frames, and count requests only from here on.
      session.sendNotify(XEN.CHECKPOINT);
    }
    await session.notifyBarrier();
    session.requestBaseline = session.notifyMessages(XEN.DO_CHECKPOINT);
    return session;
  }

  get vnetHdrLen(): number {
    return this.vnetHeader.length;
  }

  private withVnet(frame: Buffer): Buffer {
    return this.vnetHeader.length === 0 ? frame : Buffer.concat([this.vnetHeader, frame]);
  }

  /** Ethernet frames in; the session adds the vnet header when vnet is on. */
  send(side: InputSide, frames: Buffer[]): void {
    this[side].send(
      frames.map((f) => this.withVnet(f)),
      this.vnetHdrLen,
    );
  }

  /** Close one input connection and connect it again (a peer that disconnects and comes back). */
  async reopen(side: InputSide): Promise<void> {
    this[side].close();
    const port = side === 'pri' ? this.proc.ports.pri : this.proc.ports.sec;
    this[side] = await FramedConnection.open(`${this.proc.impl}/${side}`, port, this.vnetHdrLen > 0);
  }

  sendNotify(message: string): void {
    this.notify.sendRaw(encodeFrame(Buffer.from(message, 'ascii'), this.notifyVnetField ? 0 : undefined));
  }

  async barrier(timeoutMs = 5_000): Promise<void> {
    const frame = this.withVnet(barrierFrame(++this.barriers));
    const key = frame.toString('hex');
    this.barrierBytes.add(key);
    this.pri.send([frame], this.vnetHdrLen);
    this.sec.send([frame], this.vnetHdrLen);
    await this.out.waitUntil(
      `barrier ${this.barriers} released`,
      (frames) => frames.some((f) => f.data.toString('hex') === key),
      timeoutMs,
    );
  }

  async notifyBarrier(timeoutMs = 5_000): Promise<void> {
    const before = this.notifyMessages(XEN.INIT_REPLY);
    this.sendNotify(XEN.INIT);
    await this.notify.waitUntil(
      `${XEN.INIT_REPLY} #${before + 1}`,
      (frames) => frames.filter((f) => text(f) === XEN.INIT_REPLY).length > before,
      timeoutMs,
    );
  }

  /** Both inputs and the notify channel processed up to now. */
  async settle(): Promise<void> {
    await this.barrier();
    await this.notifyBarrier();
  }

  /**
   * COLO_CHECKPOINT once everything sent so far was read (notify is not ordered against the inputs), then
   * proof it was handled and that everything it released has arrived.
   */
  async flush(): Promise<void> {
    await this.barrier();
    this.sendNotify(XEN.CHECKPOINT);
    await this.notifyBarrier();
    await this.barrier();
  }

  /** What reached `out`, barrier frames left out, in arrival order. */
  released(): WireFrame[] {
    return this.out.frames.filter((f) => !this.barrierBytes.has(f.data.toString('hex')));
  }

  /** The released Ethernet frames (vnet header cut off). */
  releasedFrames(): Buffer[] {
    return this.released().map((f) => f.data.subarray(f.vnetHdrLen));
  }

  notifyMessages(message: string): number {
    return this.notify.frames.filter((f) => text(f) === message).length;
  }

  /** DO_CHECKPOINT messages since the session was opened (start-up barrier crossings excluded). */
  checkpointRequests(): number {
    return this.notifyMessages(XEN.DO_CHECKPOINT) - this.requestBaseline;
  }

  /** Arrival times (performance.now()) of each DO_CHECKPOINT since the session was opened. */
  checkpointTimes(): number[] {
    return this.notify.arrivals
      .filter((_, i) => text(this.notify.frames[i]) === XEN.DO_CHECKPOINT)
      .slice(this.requestBaseline);
  }

  async close(): Promise<void> {
    for (const c of [this.pri, this.sec, this.out, this.notify]) c.close();
    await this.proc.stop();
  }
}
