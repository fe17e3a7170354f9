import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { labCli, type LabProcess, ProcessLab, repoRoot } from './lab-process.js';
import type { InlineTopology, Netns } from './netns.js';

/**
 * The inline proxy's end-to-end lab, on top of createInlineTopology(): a lab guest in each VM namespace
 * (same address: the VM IP), the secondary agent (`colo-proxy secondary`, unix socket: the filesystem is
 * shared between namespaces), `colo-proxy run` in the proxy namespace, and a TCP client run in the client
 * namespace. Its processes are ProcessLab's (lab-process.ts): a test waits on their events with a bounded
 * timeout and teardown kills whole process groups, even after a failure.
 */

const clientScript = join(repoRoot, 'test/inline/tcp-client.ts');

export interface LabOptions {
  /** Start the secondary's guest with --nondeterministic. */
  nondeterministic?: boolean;
  /**
   * Milliseconds the secondary's SUSPEND is held back (slow hooks): the agent's lab driver talks to the guest
   * through a relay in the test process that delays that one request.
   */
  secondarySuspendDelayMs?: number;
  checkpointTimerMs?: number;
  compareTimeoutMs?: number;
  /** max_queue_size; 8192 by default (see start()). */
  maxQueueSize?: number;
  /** The coordinator's sync-point and heartbeat timeouts. */
  waitMs?: number;
  heartbeatLossMs?: number;
  /** Primary health check (lab PING) interval and failures; off when undefined. */
  primaryHealth?: { intervalMs: number; failures: number };
  servicePort?: number;
  /** Pass-through rules for the proxy's YAML (docs/configuration.md, "Pass-through rules"). */
  passthrough?: string[];
  /** The proxy's `privileges` (docs/inline.md): the sockets it dials are then opened to that user. */
  privileges?: { user: string; group?: string };
  /** Top-level fields of the proxy's YAML that replace the lab's (e.g. an exec primaryHealth). */
  config?: Record<string, unknown>;
}

export class InlineLab extends ProcessLab<InlineTopology> {
  readonly captures: SegmentCapture[] = [];
  primaryGuest!: LabProcess;
  secondaryGuest!: LabProcess;
  agent!: LabProcess;
  /** Where the agent reaches the secondary guest's control socket (through the relay when there is one). */
  private secondaryControl = '';
  readonly servicePort: number;
  relay: SuspendRelay | null = null;

  constructor(
    topo: InlineTopology,
    readonly options: LabOptions = {},
  ) {
    super(mkdtempSync(join(tmpdir(), 'colo-inline-lab-')), topo);
    this.servicePort = options.servicePort ?? 7000;
  }

  socket(name: string): string {
    return join(this.dir, `${name}.sock`);
  }

  /** The secondary's agent (`colo-proxy secondary`); also starts a new one after a test killed the first. */
  async startAgent(): Promise<LabProcess> {
    const agent = this.spawn('agent', this.topo.proxy, process.execPath, [
      labCli,
      'secondary',
      '--listen',
      `unix:${this.socket('agent')}`,
      '--plaintext',
      '--lab-control',
      this.secondaryControl,
      '--wait-timeout',
      String(Math.max(this.options.waitMs ?? 3000, 3000)),
    ]);
    this.agent = agent;
    await agent.waitFor((e) => e.event === 'listening', 20_000, 'the agent to listen');
    return agent;
  }

  /** Guests, agent, then the proxy; resolves once the pair is protected (the proxy reported 'ready'). */
  async start(): Promise<void> {
    // The client's receive buffer bounds how far one guest may lead the other (see maxQueueSize below). A new
    // namespace inherits the host's limit (32 MiB on some machines): pin Linux's default of 6 MiB.
    await this.topo.client.exec('sysctl', '-qw', 'net.ipv4.tcp_rmem=4096 131072 6291456');
    // The two lab VMs are separate kernels, not clones: their TCP timestamps differ, and the rewriter maps
    // them (TSecr toward the secondary, TSval out of it). They stay on, as in real guests;
    // COLO_LAB_TCP_TIMESTAMPS=0 turns them off to tell a timestamp problem from any other.
    if (process.env.COLO_LAB_TCP_TIMESTAMPS === '0')
      for (const vm of [this.topo.primary, this.topo.secondary])
        await vm.exec('sysctl', '-qw', 'net.ipv4.tcp_timestamps=0');
    const listen = `${this.topo.vmIp}:${this.servicePort}`;
    this.primaryGuest = this.spawn('primary-guest', this.topo.primary, process.execPath, [
      labCli,
      'lab-guest',
      '--listen',
      listen,
      '--control',
      this.socket('primary'),
    ]);
    this.secondaryGuest = this.spawn('secondary-guest', this.topo.secondary, process.execPath, [
      labCli,
      'lab-guest',
      '--listen',
      listen,
      '--control',
      this.socket('secondary'),
      ...(this.options.nondeterministic ? ['--nondeterministic'] : []),
    ]);
    await Promise.all([
      this.primaryGuest.waitFor((e) => e.event === 'listening', 20_000, 'the primary guest to listen'),
      this.secondaryGuest.waitFor((e) => e.event === 'listening', 20_000, 'the secondary guest to listen'),
    ]);

    let secondaryControl = this.socket('secondary');
    if (this.options.secondarySuspendDelayMs !== undefined) {
      this.relay = new SuspendRelay(
        this.socket('secondary-relay'),
        secondaryControl,
        this.options.secondarySuspendDelayMs,
      );
      await this.relay.listen();
      secondaryControl = this.socket('secondary-relay');
    }
    this.secondaryControl = secondaryControl;
    await this.startAgent();

    const o = this.options;
    const config = {
      interfaces: this.topo.proxyIfaces,
      checkpoint: {
        endpoint: `connect:unix:${this.socket('agent')}`,
        plaintext: true,
        checkpointTimerMs: o.checkpointTimerMs ?? 60_000,
        timeouts: { waitMs: o.waitMs ?? 3000, heartbeatLossMs: o.heartbeatLossMs ?? 3000 },
        driver: { kind: 'lab', control: this.socket('primary') },
      },
      // The two guests' kernels run free: in a download one may lead the other by up to a TCP window (the
      // client's, autotuned up to 6 MiB: about 4300 full frames), all held until the other catches up. The
      // default 1024 turned that drift into overflow checkpoints; the lab tests comparison, not that bound.
      compare: {
        compareTimeoutMs: o.compareTimeoutMs ?? 3000,
        expiredScanCycleMs: 100,
        maxQueueSize: o.maxQueueSize ?? 8192,
      },
      // The lab guest's kernel TCP state is not part of its checkpoint: the secondary's offsets stay valid.
      rewriter: { resetOffsetsOnCheckpoint: false },
      divergences: join(this.dir, 'divergences.pcapng'),
      ...(o.passthrough ? { passthrough: o.passthrough } : {}),
      ...(o.privileges ? { privileges: o.privileges } : {}),
      ...o.config,
      ...(o.primaryHealth
        ? { primaryHealth: { kind: 'lab', control: this.socket('primary'), timeoutMs: 500, ...o.primaryHealth } }
        : {}),
    };
    if (o.privileges) {
      // The proxy dials the agent and the primary guest's control socket after it has dropped root.
      chmodSync(this.dir, 0o755);
      for (const name of ['agent', 'primary']) chmodSync(this.socket(name), 0o666);
    }
    await this.runProxy(config, 30_000);
  }

  /** Runs the TCP client in the client namespace; resolves with its last JSON line. */
  client(job: Record<string, unknown>, name = 'client'): LabProcess {
    return this.runClient(name, clientScript, this.servicePort, job);
  }

  /** A lab guest control request from the test process (the socket files are shared across namespaces). */
  async control(guest: 'primary' | 'secondary', verb: string, body = ''): Promise<string> {
    const socket = connect(this.socket(guest));
    const payload = Buffer.from(body, 'utf8');
    socket.write(`${verb} ${payload.length}\n`);
    socket.write(payload);
    let received = Buffer.alloc(0);
    const reply = await new Promise<{ verb: string; body: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${verb} from the ${guest} guest`)), 5000);
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const newline = received.indexOf(10);
        if (newline < 0) return;
        const [replyVerb, length] = received.subarray(0, newline).toString('latin1').split(' ');
        if (received.length - newline - 1 < Number(length)) return;
        clearTimeout(timer);
        resolve({ verb: replyVerb, body: received.toString('utf8', newline + 1, newline + 1 + Number(length)) });
      });
    });
    socket.destroy();
    if (reply.verb !== 'OK') throw new Error(`${verb} on the ${guest} guest: ${reply.verb} ${reply.body}`);
    return reply.body;
  }

  async guestStatus(guest: 'primary' | 'secondary'): Promise<{ requests: number; connections: number }> {
    return JSON.parse(await this.control(guest, 'STATUS')) as { requests: number; connections: number };
  }

  /**
   * Captures, in the client namespace, every TCP data segment of the service that reaches the client's
   * interface (what the proxy let through), with kernel timestamps: taken as the proxy's frame enters the veth
   * (net.core.netdev_tstamp_prequeue, on by default), whichever way the proxy sends it.
   */
  async captureServiceData(): Promise<SegmentCapture> {
    const iface = this.topo.endpointIface;
    const capture = new SegmentCapture(this.topo.client, iface, this.servicePort, join(this.dir, 'capture-client.log'));
    this.captures.push(capture);
    await capture.start();
    return capture;
  }

  /** Stops every process (groups), newest first; keeps the directory when `keep` (a failed test's logs). */
  async stop(keep = false): Promise<void> {
    for (const capture of this.captures) await capture.stop();
    for (const proc of [...this.processes].reverse()) await proc.stop();
    await this.relay?.close();
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A slow VM monitor: relays the lab control protocol between the agent's driver and the secondary guest,
 * holding each SUSPEND request back for delayMs (or for ever while `stalled`). The driver sends one request
 * at a time and a request's header starts its chunk, so looking at each chunk's first bytes is enough.
 */
export class SuspendRelay {
  stalled = false;
  suspends = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    readonly target: string,
    readonly delayMs: number,
  ) {}

  async listen(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = connect(this.target);
      this.sockets.add(inbound).add(outbound);
      let queue = Promise.resolve();
      inbound.on('data', (chunk: Buffer) => {
        queue = queue.then(async () => {
          if (chunk.subarray(0, 8).toString('latin1') === 'SUSPEND ') {
            this.suspends++;
            await new Promise((resolve) => setTimeout(resolve, this.delayMs));
            while (this.stalled) await new Promise((resolve) => setTimeout(resolve, 50));
          }
          outbound.write(chunk);
        });
      });
      outbound.on('data', (chunk: Buffer) => inbound.write(chunk));
      for (const [a, b] of [
        [inbound, outbound],
        [outbound, inbound],
      ]) {
        a.on('close', () => b.destroy());
        a.on('error', () => b.destroy());
      }
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.path, resolve));
  }

  async close(): Promise<void> {
    this.stalled = false;
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One TCP data segment seen by a capture: kernel timestamp (epoch ms) and its sequence range. */
export interface CapturedSegment {
  time: number;
  /** The client's port: which connection the segment belongs to. */
  dstPort: number;
  seq: number;
  end: number;
}

/**
 * tcpdump on one interface of a namespace, printing the service's TCP data segments as they pass. Its
 * timestamps come from the kernel when a frame is sent or received, so "when did this frame leave the proxy"
 * does not depend on a JavaScript callback that a loaded machine may run tens of milliseconds late.
 */
export class SegmentCapture {
  readonly segments: CapturedSegment[] = [];
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stderr = '';

  constructor(
    readonly ns: Netns,
    readonly iface: string,
    readonly srcPort: number,
    readonly logFile: string,
  ) {}

  /** Resolves once tcpdump listens (it says so on stderr); rejects after 10 s or if it exits first. */
  async start(): Promise<void> {
    // Data segments only: IP total length minus both header lengths is the TCP payload.
    const filter = `tcp src port ${this.srcPort} and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) != 0`;
    // -B: a 32 MiB kernel buffer, so a busy moment never drops frames (stop() reports drops).
    const args = ['-i', this.iface, '-nn', '-tt', '-S', '-l', '-s', '128', '-B', '32768', filter];
    const child = spawn('ip', ['netns', 'exec', this.ns.name, 'tcpdump', ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^(\d+\.\d+) .*> \S+?\.(\d+): .* seq (\d+):(\d+),/.exec(line);
      if (match)
        this.segments.push({
          time: Number(match[1]) * 1000,
          dstPort: Number(match[2]),
          seq: Number(match[3]),
          end: Number(match[4]),
        });
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${this.stderr}`)), 10_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        this.stderr += chunk.toString();
        appendFileSync(this.logFile, chunk);
        if (this.stderr.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`tcpdump exited (${code}): ${this.stderr}`));
      });
    });
  }

  /** Stops tcpdump (SIGINT: it prints its counts) and resolves with the frames the kernel dropped. */
  async stop(): Promise<{ dropped: number }> {
    const child = this.child;
    this.child = null;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const signal = (name: NodeJS.Signals): void => {
        try {
          process.kill(-child.pid!, name);
        } catch {
          // Already gone.
        }
      };
      signal('SIGINT');
      const kill = setTimeout(() => signal('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(kill);
    }
    const dropped = /(\d+) packets? dropped by kernel/.exec(this.stderr);
    return { dropped: dropped ? Number(dropped[1]) : 0 };
  }
}
