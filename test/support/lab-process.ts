import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import type { Netns } from './netns.js';

/**
 * What the inline lab and the VM lab share: the processes they start (each the leader of its own process
 * group, every line it prints kept, so a test waits on events with a bounded timeout and teardown kills whole
 * groups, even after a failure), the proxy among them, and a client whose last JSON line is its result.
 */

export const repoRoot = new URL('../..', import.meta.url).pathname;
/** The colo-proxy command line the labs run their proxy and agent with. */
export const labCli = join(repoRoot, 'bin/colo-proxy.js');
/** The capture backend the lab's proxy runs on: the default (ring), or COLO_LAB_CAPTURE=pcap for the fallback. */
export const labCapture: 'ring' | 'pcap' = process.env.COLO_LAB_CAPTURE === 'pcap' ? 'pcap' : 'ring';

export type Event = Record<string, unknown> & { event?: string; time?: number };

/**
 * Starts `command` (inside `ns` when given) as the leader of its own process group, in the repository, with
 * stdout read as NDJSON and stderr appended to DIR/NAME.log.
 */
export function spawnLabProcess(
  dir: string,
  name: string,
  ns: Netns | null,
  command: string,
  args: string[],
): LabProcess {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const argv = ns ? ['ip', 'netns', 'exec', ns.name, command, ...args] : [command, ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', fd],
    env: { ...process.env, COLO_LOG_LEVEL: process.env.COLO_LOG_LEVEL ?? 'info' },
  });
  closeSync(fd);
  return new LabProcess(name, child, logFile);
}

/** A child process whose stdout is NDJSON; stderr goes to a log file shown when a test fails. */
export class LabProcess {
  readonly events: Event[] = [];
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      appendFileSync(`${logFile}.out`, `${line}\n`);
      try {
        this.events.push(JSON.parse(line) as Event);
      } catch {
        // Not every line is an event (a client may print plain text); it is kept in `lines`.
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    // 'close', not 'exit': only after it has every line the process printed been read (a waiter that saw the
    // exit first would miss the last one).
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.closed = true;
        resolve(code ?? (signal ? -1 : null));
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
  }

  private closed = false;

  get running(): boolean {
    return !this.closed;
  }

  /** Resolves with the first event (from the start) that matches; rejects after timeoutMs or on exit. */
  async waitFor(match: (e: Event) => boolean, timeoutMs: number, what: string): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (!this.running)
        throw new Error(
          `${this.name} exited (${String(this.child.exitCode ?? this.child.signalCode)}) while waiting for ${what}\n${this.logTail()}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.name}\n${this.logTail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Like waitFor, but only events after the `after`-th one. */
  waitForNext(after: number, match: (e: Event) => boolean, timeoutMs: number, what: string): Promise<Event> {
    return this.waitFor((e) => this.events.indexOf(e) >= after && match(e), timeoutMs, what);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined || !this.running) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Anything the leader left behind in its group (exec hooks) goes too.
    this.signal('SIGKILL');
  }

  logTail(lines = 30): string {
    try {
      const text = readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return `--- ${this.name} (${this.logFile}) ---\n${text.slice(-lines).join('\n')}`;
    } catch {
      return `--- ${this.name}: no log ---`;
    }
  }
}

/** The namespaces and address every lab has: the client's, the proxy's, and the protected VM's IP. */
export interface LabTopology {
  client: Netns;
  proxy: Netns;
  vmIp: string;
}

/** A lab's directory (logs, sockets, configs) and the processes it started in it, newest last. */
export abstract class ProcessLab<Topology extends LabTopology> {
  readonly processes: LabProcess[] = [];
  proxy!: LabProcess;

  constructor(
    readonly dir: string,
    readonly topo: Topology,
  ) {}

  spawn(name: string, ns: Netns | null, command: string, args: string[]): LabProcess {
    const proc = spawnLabProcess(this.dir, name, ns, command, args);
    this.processes.push(proc);
    return proc;
  }

  /** Runs a client script in the client namespace with its job (aimed at the VM's `port`) as one JSON argument. */
  protected runClient(name: string, script: string, port: number, job: Record<string, unknown>): LabProcess {
    const full = { host: this.topo.vmIp, port, ...job };
    return this.spawn(name, this.topo.client, process.execPath, ['--import', 'tsx', script, JSON.stringify(full)]);
  }

  /**
   * Writes the proxy's YAML, `config` over what every lab's proxy has (the lab's capture backend, a metrics
   * listener on any port, the event log in the lab directory), and starts `colo-proxy run` in the proxy
   * namespace; resolves once it reports 'ready' (the pair is protected).
   */
  protected async runProxy(config: Record<string, unknown>, readyMs: number): Promise<void> {
    const common = {
      capture: labCapture,
      // A ring slot is 2 KiB: 8192 frames (16 MiB an interface) ride out a proxy starved of CPU for a few tens of
      // milliseconds at full download speed; at 1024 a fresh-clone CI run saw the kernel drop 202 of the primary's
      // frames, and the client a hole TCP later filled. pcap's slots are 64 KiB: 1024 of them is 64 MiB already.
      captureBufferFrames: labCapture === 'ring' ? 8192 : 1024,
      metrics: '127.0.0.1:0',
      events: join(this.dir, 'events.ndjson'),
    };
    const file = join(this.dir, 'run.yaml');
    writeFileSync(file, stringify({ ...common, ...config }));
    this.proxy = this.spawn('proxy', this.topo.proxy, process.execPath, [labCli, 'run', '--config', file]);
    await this.proxy.waitFor((e) => e.event === 'ready', readyMs, 'the pair to be protected');
  }

  /** The client's last JSON line: its result, or an error that fails the test with every process's log. */
  async clientResult<T = Record<string, unknown>>(proc: LabProcess, timeoutMs: number): Promise<T> {
    const last = await proc.waitFor((e) => 'kind' in e || 'error' in e, timeoutMs, 'the client result');
    if ('error' in last) throw new Error(`client failed: ${String(last.error)}\n${this.logs()}`);
    return last as T;
  }

  /** The proxy's events of one kind, in order. */
  proxyEvents(kind: string): Event[] {
    return this.proxy.events.filter((e) => e.event === kind);
  }

  /** GET on the proxy's statistics server (it listens on loopback inside the proxy namespace). */
  async stats(path: '/stats' | '/metrics'): Promise<string> {
    const started = await this.proxy.waitFor((e) => e.event === 'started', 1000, 'the proxy to start');
    return this.topo.proxy.exec('curl', '-sf', '--max-time', '5', `http://${String(started.metrics)}${path}`);
  }

  logs(): string {
    return this.processes.map((p) => p.logTail(40)).join('\n');
  }

  /** Stops every process; `keep` keeps the directory (a failed test's logs). */
  abstract stop(keep?: boolean): Promise<void>;

  /** After a test: stops the lab; when the test failed, prints every process's log and keeps the directory. */
  async finish(failed: boolean): Promise<void> {
    if (failed) process.stderr.write(`${this.logs()}\nlab directory kept: ${this.dir}\n`);
    await this.stop(failed);
  }
}
