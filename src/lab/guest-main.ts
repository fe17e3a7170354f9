import { once } from 'node:events';
import type { Command } from 'commander';
import { ConfigError } from '../config/errors.js';
import { createLogger } from '../log.js';
import { parseControlAddress } from './control-protocol.js';
import { GuestControlServer } from './guest-control.js';
import { LabGuest } from './guest.js';

/**
 * `colo-proxy lab-guest --listen HOST:PORT --control PATH [--nondeterministic]`: the lab guest as a process
 * of its own (the namespace end-to-end tests run one per "VM"). When both sockets are bound it prints one
 * JSON line on stdout naming them (port 0 picks a free port: read the line to learn it). SIGTERM or SIGINT
 * closes it cleanly and removes the control socket file.
 */

export function parseListenAddress(text: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new ConfigError('--listen', 'HOST:PORT (e.g. 127.0.0.1:7000 or [::1]:7000)', text);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}

export interface LabGuestFlags {
  listen: string;
  control: string;
  nondeterministic?: boolean;
  maxStateSize?: string;
}

export async function runLabGuest(flags: LabGuestFlags, signal?: AbortSignal): Promise<void> {
  const listen = parseListenAddress(flags.listen);
  const control = parseControlAddress(flags.control);
  if (control === null)
    throw new ConfigError('--control', 'a unix socket path, unix:PATH or tcp:HOST:PORT', flags.control);
  const maxStateBytes = flags.maxStateSize === undefined ? undefined : Number(flags.maxStateSize);
  if (maxStateBytes !== undefined && !(Number.isSafeInteger(maxStateBytes) && maxStateBytes > 0)) {
    throw new ConfigError('--max-state-size', 'a positive number of bytes', flags.maxStateSize);
  }

  const logger = createLogger({ base: { app: 'colo-proxy', role: 'lab-guest' } });
  const guest = new LabGuest({ nondeterministic: flags.nondeterministic === true, logger });
  const controlServer = new GuestControlServer(guest, { maxStateBytes, logger });
  const bound = await guest.listen(listen.host, listen.port);
  let controlBound: string;
  try {
    controlBound = await controlServer.listen(control);
  } catch (err) {
    await guest.close();
    throw err;
  }
  const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', listen: `${host}:${bound.port}`, control: controlBound, pid: process.pid })}\n`,
  );
  logger.info({ listen: `${host}:${bound.port}`, control: controlBound }, 'lab guest running');

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  signal?.addEventListener('abort', onSignal, { once: true });
  if (!stop.signal.aborted) await once(stop.signal, 'abort');
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  await controlServer.close();
  await guest.close();
  logger.info('lab guest stopped');
  logger.flush();
}

export function registerLabGuest(program: Command): void {
  program
    .command('lab-guest')
    .description('run the lab guest: a key-value TCP service whose state is saved/loaded through a control socket')
    .requiredOption('--listen <host:port>', 'service address, e.g. 127.0.0.1:7000 (port 0 picks one)')
    .requiredOption('--control <path>', 'control socket: a unix socket path, unix:PATH or tcp:HOST:PORT')
    .option('--nondeterministic', 'append a random token to every line reply', false)
    .option('--max-state-size <bytes>', 'largest state LOAD accepts, in bytes (default 1 GiB)')
    .action(async (flags: LabGuestFlags) => {
      await runLabGuest(flags);
    });
}
