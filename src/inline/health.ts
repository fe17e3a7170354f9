import { exec } from 'node:child_process';
import { connect } from 'node:net';
import { ControlDecoder, encodeControl, parseControlAddress, type ControlMessage } from '../lab/control-protocol.js';
import { QmpClient } from '../checkpoint/qmp.js';
import type { PrimaryHealthConfig } from '../config/inline.js';

/**
 * Watches the primary VM and says once when it is gone, so the proxy can fail over. One check every
 * intervalMs; `failures` failed checks in a row declare the primary lost (one slow answer is not a death).
 */

/** One check: resolves null when healthy, or a short reason. Never rejects. */
export type HealthProbe = (timeoutMs: number) => Promise<string | null>;

export interface HealthWatch {
  /** Checks that failed in a row so far. */
  readonly failing: number;
  stop(): void;
}

export function probeFor(config: Exclude<PrimaryHealthConfig, { kind: 'none' }>): HealthProbe {
  if (config.kind === 'qemu') return qemuProbe(config.qmp);
  return config.kind === 'lab' ? labProbe(config.control) : execProbe(config.command);
}

/**
 * `query-status` on the primary QEMU's QMP socket: alive when QEMU answers, whatever its run state (a VM
 * stopped for a checkpoint is alive). A refused or closed socket, or no answer in time, is a failed check.
 */
export function qemuProbe(qmp: string): HealthProbe {
  return async (timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    let client: QmpClient | null = null;
    try {
      client = await QmpClient.connect(qmp, { timeoutMs, retry: false });
      await client.execute('query-status', undefined, Math.max(1, deadline - performance.now()));
      return null;
    } catch (err) {
      return (err as Error).message;
    } finally {
      client?.close();
    }
  };
}

/** PING on the lab guest's control socket: a guest that died leaves nothing listening there. */
export function labProbe(control: string): HealthProbe {
  const address = parseControlAddress(control);
  if (address === null) throw new Error(`primary health: "${control}" is not a control socket address`);
  return (timeoutMs) =>
    new Promise((resolve) => {
      const socket = address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host);
      const decoder = new ControlDecoder(1024);
      const messages: ControlMessage[] = [];
      const done = (reason: string | null): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(reason);
      };
      const timer = setTimeout(() => done(`no answer to PING within ${timeoutMs} ms`), timeoutMs);
      socket.on('connect', () => {
        for (const part of encodeControl('PING')) socket.write(part);
      });
      socket.on('data', (chunk: Buffer) => {
        const error = decoder.push(chunk, messages);
        if (error) return done(`bad control reply (${error})`);
        if (messages.length > 0) done(messages[0].verb === 'OK' ? null : `PING answered ${messages[0].verb}`);
      });
      socket.on('error', (err) => done(`control socket: ${err.message}`));
      socket.on('close', () => done('control socket closed'));
    });
}

/** A shell command that exits 0 while the primary is alive (e.g. `virsh domstate vm | grep -q running`). */
export function execProbe(command: string): HealthProbe {
  return (timeoutMs) =>
    new Promise((resolve) => {
      exec(command, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err) => {
        resolve(err ? `health command failed (${err.killed ? 'timed out' : `exit ${String(err.code)}`})` : null);
      });
    });
}

export interface WatchOptions {
  probe: HealthProbe;
  intervalMs: number;
  failures: number;
  timeoutMs: number;
  /** Called once, with the last failure's reason. */
  onLost: (reason: string) => void;
  /** Called for each failed check (for logs). */
  onFailure?: (reason: string, inARow: number) => void;
}

export function watchPrimary(options: WatchOptions): HealthWatch {
  let failing = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const next = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void check(), options.intervalMs);
  };
  const check = async (): Promise<void> => {
    const reason = await options.probe(options.timeoutMs);
    if (stopped) return;
    if (reason === null) {
      failing = 0;
      return next();
    }
    failing++;
    options.onFailure?.(reason, failing);
    if (failing >= options.failures) {
      stopped = true;
      options.onLost(`primary health check failed ${failing} times in a row: ${reason}`);
      return;
    }
    next();
  };
  next();
  return {
    get failing() {
      return failing;
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
