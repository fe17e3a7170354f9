import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { QmpClient, QmpConnectionError } from '../qmp.js';

/**
 * One QEMU process that the secondary's qemu driver owns: started from the configured command line in a
 * process group of its own, with a QMP socket of the driver's, waiting for an incoming migration. The driver
 * kills it (the whole group) when a newer VM replaces it; any other exit is unexpected and reported once
 * through `onUnexpectedExit`, with the exit status and the tail of QEMU's stderr.
 */

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface QemuStartOptions {
  /** The configured argv; `{tap}` and `{qmp}` are replaced in every argument. */
  command: readonly string[];
  tap: string;
  /** Where this VM's sockets go (QMP, incoming migration). */
  workDir: string;
  connectTimeoutMs: number;
  logger: Logger;
  onUnexpectedExit(vm: QemuVm, description: string): void;
}

const STDERR_TAIL = 4096;
/** How long an error waits for the process's exit status once QMP closed under it. */
const EXIT_GRACE_MS = 1000;
let serial = 0;

export class QemuVm {
  readonly exited: Promise<ExitStatus>;
  exitStatus: ExitStatus | null = null;
  private stderr = '';
  private killed = false;
  qmp: QmpClient | null = null;

  private constructor(
    readonly child: ChildProcess,
    readonly tap: string,
    readonly qmpPath: string,
    /** Where migrate-incoming listens when the driver feeds the state itself. */
    readonly incomingPath: string,
    readonly argv: readonly string[],
    options: QemuStartOptions,
  ) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-STDERR_TAIL);
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        this.qmp?.close();
        if (!this.killed) {
          const description = this.describeExit();
          options.logger.error({ pid: child.pid, tap, code, signal, stderr: this.stderrTail() }, description);
          options.onUnexpectedExit(this, description);
        }
        void removeSockets(this).then(() => resolve({ code, signal }));
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  /** Starts QEMU with `-S -incoming defer` and connects to its QMP socket. */
  static async start(options: QemuStartOptions): Promise<QemuVm> {
    const name = `qemu-${process.pid}-${serial++}`;
    const qmpPath = join(options.workDir, `${name}.qmp`);
    const incomingPath = join(options.workDir, `${name}.incoming`);
    const argv = qemuArgv(options.command, options.tap, qmpPath);
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    const vm = new QemuVm(child, options.tap, qmpPath, incomingPath, argv, options);
    const spawnFailed = new Promise<never>((_resolve, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start ${argv[0]}: ${err.message}`)));
    });
    spawnFailed.catch(() => undefined);
    try {
      vm.qmp = await Promise.race([
        QmpClient.connect(qmpPath, { timeoutMs: options.connectTimeoutMs }),
        spawnFailed,
        vm.exited.then(() => Promise.reject(new Error(vm.describeExit()))),
      ]);
    } catch (err) {
      await vm.kill();
      throw new Error(await vm.explain(err as Error));
    }
    options.logger.debug({ pid: vm.pid, tap: options.tap }, 'secondary QEMU started, waiting for its state');
    return vm;
  }

  stderrTail(): string {
    return this.stderr.trim();
  }

  /** Kills the process group and waits for the exit: a tap is free only once its holder is gone. */
  async kill(): Promise<ExitStatus> {
    this.killed = true;
    if (this.exitStatus === null && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // The group is already gone; 'close' follows.
      }
    }
    this.qmp?.close();
    if (this.child.pid === undefined) return { code: null, signal: null };
    return this.exited;
  }

  describeExit(): string {
    const status = this.exitStatus;
    const how =
      status === null
        ? 'is still running'
        : status.code !== null
          ? `exited with status ${status.code}`
          : `was killed by signal ${status.signal ?? 'unknown'}`;
    const tail = this.stderrTail();
    return `QEMU (pid ${this.pid}, tap ${this.tap}) ${how}; ${tail === '' ? 'no stderr' : `stderr: ${tail}`}`;
  }

  /**
   * The best account of a failure: when QMP closed because QEMU exited (a bad state makes an incoming QEMU
   * exit), the exit status and stderr say more than the closed socket.
   */
  async explain(err: Error): Promise<string> {
    if (err instanceof QmpConnectionError || this.exitStatus !== null || isSocketError(err)) {
      const grace = new Promise<null>((resolve) => setTimeout(resolve, EXIT_GRACE_MS, null).unref());
      await Promise.race([this.exited, grace]);
      if (this.exitStatus !== null && !this.killed) return `${err.message}; ${this.describeExit()}`;
      if (this.exitStatus !== null) return `${err.message}; stderr: ${this.stderrTail() || 'none'}`;
    }
    return err.message;
  }
}

/** The configured command with its placeholders filled, then what every incoming QEMU needs. */
export function qemuArgv(command: readonly string[], tap: string, qmpPath: string): string[] {
  const hasQmp = command.some((arg) => arg.includes('{qmp}'));
  const argv = command.map((arg) => arg.replaceAll('{tap}', tap).replaceAll('{qmp}', qmpPath));
  // -S: an incoming QEMU must stay paused after loading, even when the source was running when its
  // migration completed (a pre-copy that converged on its own); the agent resumes it after LOADED.
  argv.push('-S', '-incoming', 'defer');
  if (!hasQmp) argv.push('-qmp', `unix:${qmpPath},server=on,wait=off`);
  return argv;
}

function isSocketError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'ENOENT';
}

async function removeSockets(vm: QemuVm): Promise<void> {
  await Promise.all([rm(vm.qmpPath, { force: true }), rm(vm.incomingPath, { force: true })]).catch(() => undefined);
}
