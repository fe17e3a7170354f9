import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

type Line = Record<string, unknown>;

/**
 * `node bin/colo-proxy.js ARGS` as a child process: its stdout JSON lines (events, results) and its stderr
 * log lines (pino JSON; other text is kept as `{ text }`), with bounded waits on either.
 */
export class CliProcess {
  readonly stdout: Line[] = [];
  readonly stderr: Line[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();

  constructor(args: string[]) {
    this.child = spawn('node', ['bin/colo-proxy.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (input: NodeJS.ReadableStream, into: Line[]): void => {
      createInterface({ input }).on('line', (text) => {
        into.push(parseLine(text));
        for (const wake of this.waiters) wake();
      });
    };
    collect(this.child.stdout!, this.stdout);
    collect(this.child.stderr!, this.stderr);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        for (const wake of this.waiters) wake();
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first line of `stream` matching `match`; rejects on exit or after timeoutMs. */
  async waitFor(stream: 'stdout' | 'stderr', match: (line: Line) => boolean, timeoutMs: number, what: string) {
    const lines = this[stream];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find(match);
      if (found) return found;
      if (!this.running) throw new Error(`colo-proxy exited before ${what}: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiters = this.waiters;
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Log lines whose message contains `text`. */
  logs(text: string): Line[] {
    return this.stderr.filter((line) => typeof line.msg === 'string' && line.msg.includes(text));
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  private describe(): string {
    const tail = (lines: Line[]): string =>
      lines
        .slice(-5)
        .map((line) => JSON.stringify(line))
        .join('\n  ');
    return `\n stdout:\n  ${tail(this.stdout)}\n stderr:\n  ${tail(this.stderr)}`;
  }
}

function parseLine(text: string): Line {
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object') return value as Line;
  } catch {
    // not JSON: kept as text below
  }
  return { text };
}

/** A loopback TCP port that was free a moment ago (bound and released), for a peer that starts later. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
