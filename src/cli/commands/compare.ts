import type { Command } from 'commander';
import {
  parseSocketAddress,
  sameEndpoint,
  SocketAddressError,
  type SocketAddress,
} from '../../../proxy/ports/socket-address.js';
import { ConfigError } from '../../config/errors.js';
import { declareFlags, flagsToOverrides } from '../../config/load.js';
import { collectRule, passthroughFromFlags } from '../../config/passthrough.js';
import {
  loadProtectionConfig,
  protectionFlags,
  type ProtectionConfig,
  type ProtectionFlagValues,
} from '../../config/protection-mode.js';
import { SHUTDOWN_DRAIN_MS, startCompareService, type CompareSettings } from '../../dropin/compare-service.js';
import { createLogger } from '../../log.js';
import { parseListenAddress } from '../../stats/server.js';
import { exitOnSecondSignal } from '../signals.js';

const ADDRESS_FORMS = 'listen:HOST:PORT | connect:HOST:PORT | listen:unix:PATH | connect:unix:PATH';

/** The flags as commander hands them over (all strings but the boolean). */
export interface CompareFlags extends ProtectionFlagValues {
  primaryIn: string;
  secondaryIn: string;
  outdev: string;
  notifyDev?: string;
  compareTimeout: string;
  expiredScanCycle: string;
  maxQueueSize: string;
  maxHeldFrames: string;
  maxHeldBytes: string;
  vnetHdrSupport: boolean;
  metrics?: string;
  passthrough?: string[];
  /** A YAML file with a `protection` mapping. */
  config?: string;
}

/** Flag names mirror QEMU's colo-compare properties (primary_in -> --primary-in, ...). */
export function registerCompare(program: Command): void {
  const command = program
    .command('compare')
    .description("drop-in for QEMU's colo-compare and Xen's userspace COLO proxy (framed chardev sockets)")
    .requiredOption('--primary-in <address>', `primary VM output (QEMU primary_in): ${ADDRESS_FORMS}`)
    .requiredOption('--secondary-in <address>', 'secondary VM output (QEMU secondary_in)')
    .requiredOption('--outdev <address>', 'where released primary frames go (QEMU outdev)')
    .option('--notify-dev <address>', "Xen libxl's notify channel (QEMU notify_dev)")
    .option('--compare-timeout <ms>', 'a frame held longer asks for a checkpoint (QEMU compare_timeout)', '3000')
    .option('--expired-scan-cycle <ms>', 'how often held frames are checked (QEMU expired_scan_cycle)', '1000')
    .option('--max-queue-size <n>', 'frames per connection per side before a checkpoint (QEMU max_queue_size)', '1024')
    .option(
      '--max-held-frames <n>',
      'frames held by both sides together before held primaries are released uncompared (each side: two thirds)',
      '49152',
    )
    .option('--max-held-bytes <n>', 'the same bound in bytes', String(48 * 1024 * 1024))
    .option('--vnet-hdr-support', 'frames carry a vnet_hdr_len field (QEMU vnet_hdr_support)', false)
    .option('--metrics <[host:]port>', 'serve Prometheus /metrics and JSON /stats (loopback when only a port)')
    .option('--passthrough <rule>', 'release flows matching RULE uncompared, e.g. tcp:22 (repeatable)', collectRule)
    .option('--config <file>', 'a YAML file whose `protection` mapping sets the protection mode (flags win)');
  declareFlags(command, protectionFlags);
  command.action(async (flags: CompareFlags) => {
    const settings = parseCompareFlags(flags);
    await runCompare(settings);
  });
}

export function parseCompareFlags(flags: CompareFlags): CompareSettings {
  const primaryIn = address('--primary-in', flags.primaryIn);
  const secondaryIn = address('--secondary-in', flags.secondaryIn);
  const outdev = address('--outdev', flags.outdev);
  const notifyDev = flags.notifyDev === undefined ? null : address('--notify-dev', flags.notifyDev);
  const named: [string, SocketAddress][] = [
    ['--primary-in', primaryIn],
    ['--secondary-in', secondaryIn],
    ['--outdev', outdev],
  ];
  if (notifyDev !== null) named.push(['--notify-dev', notifyDev]);
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      if (sameEndpoint(named[i][1], named[j][1])) {
        throw new ConfigError(named[j][0], `an address different from ${named[i][0]}'s`, flagValue(flags, named[j][0]));
      }
    }
  }
  const protection = protectionFromFlags(flags, notifyDev !== null);
  return {
    primaryIn,
    secondaryIn,
    outdev,
    notifyDev,
    compareTimeoutMs: positiveInteger('--compare-timeout', flags.compareTimeout),
    expiredScanCycleMs: positiveInteger('--expired-scan-cycle', flags.expiredScanCycle),
    maxQueueSize: positiveInteger('--max-queue-size', flags.maxQueueSize),
    maxHeldFrames: positiveInteger('--max-held-frames', flags.maxHeldFrames),
    maxHeldBytes: positiveInteger('--max-held-bytes', flags.maxHeldBytes),
    vnetHdr: flags.vnetHdrSupport === true,
    metrics: flags.metrics === undefined ? null : parseListenAddress(flags.metrics, '--metrics'),
    passthrough: passthroughFromFlags('--passthrough', flags.passthrough),
    protection,
  };
}

/** The `protection` mapping of --config under the --protection-* flags (docs/compare.md, "Protection modes"). */
function protectionFromFlags(flags: CompareFlags, notify: boolean): ProtectionConfig {
  const overrides = flagsToOverrides(protectionFlags, { ...flags }).protection ?? {};
  const config = loadProtectionConfig(flags.config, overrides as Partial<ProtectionConfig>);
  if (config.mode !== 'compare' && !notify) {
    throw new ConfigError(
      'protection.mode',
      'compare without --notify-dev: periodic output is released by checkpoints, which only the notify peer takes',
      config.mode,
    );
  }
  return config;
}

function flagValue(flags: CompareFlags, flag: string): string | undefined {
  const key = flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof CompareFlags;
  return flags[key] as string | undefined;
}

function address(flag: string, text: string): SocketAddress {
  try {
    return parseSocketAddress(flag, text);
  } catch (err) {
    if (err instanceof SocketAddressError) throw new ConfigError(flag, `${ADDRESS_FORMS} (${err.problem})`, text);
    throw err;
  }
}

/** QEMU parses these as uint32 and requires them to be > 0. */
function positiveInteger(flag: string, text: string): number {
  const value = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(value > 0 && value <= 0xffffffff)) throw new ConfigError(flag, 'an integer from 1 to 4294967295', text);
  return value;
}

/**
 * Runs until SIGINT or SIGTERM, then flushes every held primary frame to outdev and says in one line how many
 * (or how many could not be delivered); a second signal during that exits at once (status 128 + signal). When every socket is ready it logs `{"msg":"ready", endpoints}` (pino JSON)
 * and also writes the plain line `colo-proxy compare: ready primary-in=HOST:PORT ...` to stderr, which is
 * the one to match on: it is written synchronously, before any frame is read.
 */
export async function runCompare(settings: CompareSettings): Promise<void> {
  const logger = createLogger({ name: 'compare' });
  let service;
  try {
    service = await startCompareService(settings, logger);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError('socket', 'addresses colo-proxy compare can use', message);
  }
  logger.info({ endpoints: service.endpoints }, 'ready');
  const where = Object.entries(service.endpoints)
    .map(([name, at]) => `${name}=${at}`)
    .join(' ');
  process.stderr.write(`colo-proxy compare: ready ${where}\n`);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  exitOnSecondSignal('compare');
  logger.info({ signal, loop: service.loop.counters }, 'shutting down');
  const report = await service.close();
  if (report.undeliveredBytes === 0) {
    logger.info(report, `shutdown: ${report.flushedFrames} held primary frames flushed to outdev`);
  } else {
    const why = report.outdevConnected
      ? `outdev did not take them within ${SHUTDOWN_DRAIN_MS} ms`
      : 'outdev has no peer';
    logger.error(
      report,
      `shutdown: ${report.flushedFrames} held primary frames flushed but ${report.undeliveredBytes} output bytes were not delivered: ${why}`,
    );
  }
  logger.flush();
}
