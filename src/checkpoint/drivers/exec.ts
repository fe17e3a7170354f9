import { constants } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { silentLogger, type Logger } from '../../log.js';
import { DriverError, type DriverHook, type VmDriver } from '../driver.js';

/**
 * The `exec` driver: each VM operation is a shell command from the config, run with `sh -c` in a process
 * group of its own so a timeout can kill the hook and everything it started. save writes the state on
 * stdout; load reads it on stdin. Exit status 0 is success; anything else is a DriverError naming the hook,
 * its exit status (or signal) and the tail of its stderr.
 */

export interface ExecHooks {
  suspend?: string;
  save?: string;
  load?: string;
  resume?: string;
}

export interface ExecTimeouts {
  suspendMs: number;
  saveMs: number;
  loadMs: number;
  resumeMs: number;
}

export interface ExecDriverOptions {
  /** save output beyond this many bytes fails the hook instead of exhausting memory. */
  maxStateBytes?: number;
  /** How much of the end of stderr a failure reports. */
  stderrTailBytes?: number;
  /** Extra environment for every hook (merged over process.env). */
  env?: Record<string, string>;
  cwd?: string;
  logger?: Logger;
}

export const defaultExecTimeouts: ExecTimeouts = {
  suspendMs: 10_000,
  saveMs: 60_000,
  loadMs: 60_000,
  resumeMs: 10_000,
};

/** The largest Buffer this Node can allocate; a state beyond it could not be held anyway. */
const BUFFER_LIMIT = constants.MAX_LENGTH;
const DEFAULT_STDERR_TAIL = 4096;
/** stdin is fed in slices of this size so the pipe's backpressure paces the writes, not the whole state. */
const STDIN_SLICE = 1 << 20;

interface HookRun {
  stdout: Buffer | null;
}

export class ExecDriver implements VmDriver {
  readonly kind = 'exec';
  private readonly timeouts: ExecTimeouts;
  private readonly maxStateBytes: number;
  private readonly stderrTail: number;
  private readonly log: Logger;
  private readonly running = new Set<ChildProcess>();
  /** Counters for metrics: hooks run, hooks failed (any reason), and of those, timed out. */
  readonly stats = { calls: 0, failures: 0, timeouts: 0 };

  constructor(
    readonly hooks: ExecHooks,
    timeouts: Partial<ExecTimeouts> = {},
    private readonly options: ExecDriverOptions = {},
  ) {
    this.timeouts = { ...defaultExecTimeouts, ...timeouts };
    this.maxStateBytes = Math.min(options.maxStateBytes ?? BUFFER_LIMIT, BUFFER_LIMIT);
    this.stderrTail = options.stderrTailBytes ?? DEFAULT_STDERR_TAIL;
    this.log = options.logger ?? silentLogger;
  }

  async suspend(): Promise<void> {
    await this.run('suspend', this.timeouts.suspendMs, null, false);
  }

  async save(): Promise<Buffer> {
    const { stdout } = await this.run('save', this.timeouts.saveMs, null, true);
    return stdout ?? Buffer.alloc(0);
  }

  async load(state: Buffer): Promise<void> {
    await this.run('load', this.timeouts.loadMs, state, false);
  }

  async resume(): Promise<void> {
    await this.run('resume', this.timeouts.resumeMs, null, false);
  }

  /** Kills any hook still running (process groups included). */
  async close(): Promise<void> {
    const exits = [...this.running].map((child) => {
      killGroup(child);
      return child.exitCode === null && child.signalCode === null ? once(child, 'close') : Promise.resolve();
    });
    await Promise.all(exits);
  }

  private run(hook: DriverHook, timeoutMs: number, stdin: Buffer | null, wantStdout: boolean): Promise<HookRun> {
    const command = this.hooks[hook];
    this.stats.calls++;
    if (command === undefined || command.trim() === '') {
      this.stats.failures++;
      return Promise.reject(new DriverError(hook, `exec driver: no ${hook} hook is configured (driver.${hook})`));
    }
    const started = performance.now();
    const child = spawn('sh', ['-c', command], {
      detached: true,
      stdio: [stdin ? 'pipe' : 'ignore', wantStdout ? 'pipe' : 'ignore', 'pipe'],
      env: {
        ...process.env,
        ...this.options.env,
        COLO_HOOK: hook,
        ...(stdin ? { COLO_STATE_BYTES: String(stdin.length) } : {}),
      },
      cwd: this.options.cwd,
    });
    this.running.add(child);

    return new Promise<HookRun>((resolve, reject) => {
      const stdout = new ChunkCollector();
      const stderr = new TailCollector(this.stderrTail);
      let failure: { reason: string; timedOut: boolean } | null = null;
      let spawnError: Error | null = null;

      const fail = (reason: string, timedOut: boolean): void => {
        if (failure !== null) return;
        failure = { reason, timedOut };
        killGroup(child);
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`, true), timeoutMs);

      child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.stdout?.on('data', (chunk: Buffer) => {
        if (failure !== null) return;
        if (stdout.length + chunk.length > this.maxStateBytes) {
          fail(`wrote more than the maximum state size of ${this.maxStateBytes} bytes on stdout`, false);
          return;
        }
        stdout.push(chunk);
      });
      child.on('error', (err) => {
        spawnError = err;
        if (child.pid !== undefined) return;
        // Never started (e.g. a missing cwd): there will be no 'close' to wait for.
        clearTimeout(timer);
        this.running.delete(child);
        this.stats.failures++;
        reject(new DriverError(hook, `exec hook "${hook}" (${command}) could not start: ${err.message}`));
      });
      if (stdin && child.stdin) {
        feed(child.stdin, stdin).catch((err: NodeJS.ErrnoException) => {
          // A hook may exit without reading all of its stdin; its exit status decides, not the broken pipe.
          this.log.debug({ hook, err: err.code ?? err.message }, 'load hook closed stdin early');
        });
      }

      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.running.delete(child);
        const ms = Math.round(performance.now() - started);
        const failed = failure as { reason: string; timedOut: boolean } | null;
        const tail = stderr.text();
        if (failed === null && spawnError === null && code === 0) {
          this.log.debug({ hook, ms }, 'exec hook done');
          resolve({ stdout: wantStdout ? stdout.concat() : null });
          return;
        }
        const status =
          failed?.reason ?? (spawnError ? `could not start (${spawnError.message})` : exitText(code, signal));
        const detail = tail === '' ? 'no stderr' : `stderr: ${tail}`;
        this.stats.failures++;
        if (failed?.timedOut) this.stats.timeouts++;
        this.log.warn({ hook, ms, code, signal, timedOut: failed?.timedOut ?? false }, 'exec hook failed');
        reject(
          new DriverError(
            hook,
            `exec hook "${hook}" (${command}) failed: ${status}; ${detail}`,
            code,
            tail,
            failed?.timedOut ?? false,
          ),
        );
      });
    });
  }
}

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return code !== null ? `exit status ${code}` : `killed by signal ${signal ?? 'unknown'}`;
}

/** Kills the hook's whole process group: `sh -c` may have started children that hold its pipes open. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone: the group has no members left.
  }
}

/** Writes the state in slices, waiting for 'drain' whenever the pipe is full. Slices are views: no copy. */
async function feed(stream: Writable, state: Buffer): Promise<void> {
  const failed = new Promise<never>((_resolve, reject) => stream.once('error', reject));
  failed.catch(() => undefined);
  for (let offset = 0; offset < state.length; offset += STDIN_SLICE) {
    if (!stream.write(state.subarray(offset, offset + STDIN_SLICE))) {
      await Promise.race([once(stream, 'drain'), failed]);
    }
  }
  stream.end();
  await Promise.race([once(stream, 'finish'), failed]);
}

/** Keeps the chunks as they come and copies once at the end: linear in the state size. */
export class ChunkCollector {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  concat(): Buffer {
    const whole = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
    this.chunks = [];
    return whole;
  }
}

/** Keeps only the last `limit` bytes of a stream (stderr can be large; its end says what went wrong). */
class TailCollector {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    while (this.chunks.length > 1 && this.length - this.chunks[0].length >= this.limit) {
      this.length -= this.chunks[0].length;
      this.chunks.shift();
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks, this.length);
    return all
      .subarray(Math.max(0, all.length - this.limit))
      .toString('utf8')
      .trim();
  }
}
