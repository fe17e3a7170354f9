import { Option, type Command } from 'commander';
import { Coordinator } from '../../checkpoint/coordinator.js';
import type { CheckpointOutcome, CheckpointReport, LossEvent, PhaseDurations } from '../../checkpoint/engine.js';
import { linkCoordinator, linkOptions, type Link } from '../../checkpoint/link.js';
import { formatEndpoint } from '../../checkpoint/transport.js';
import { prepareCheckpointRole } from '../../checkpoint/drivers/index.js';
import { checkpointFlags } from '../../config/checkpoint-flags.js';
import { checkpointEndpoint, loadCheckpointConfig } from '../../config/checkpoint.js';
import { ConfigError } from '../../config/errors.js';
import { declareFlags } from '../../config/load.js';
import { createLogger } from '../../log.js';

/** Exit status when the checkpoint failed, the secondary never became ready, or the endpoint cannot be set up. */
export const EXIT_CHECKPOINT_FAILED = 1;

/**
 * `colo-proxy checkpoint`: acts as the coordinator once. Connects (or listens), waits for the secondary for
 * up to --ready-ms (redialling with backoff when it is not up yet), seeds it, runs one checkpoint and
 * prints one JSON object with each phase's duration in milliseconds. It always prints that object, failures
 * included (`ok: false` with an error code and message); exit 0 when the checkpoint succeeded, 1 when it
 * failed, 2 on a usage or configuration error (docs/protocol.md, "Exit statuses").
 */
export function registerCheckpoint(program: Command): void {
  const command = program
    .command('checkpoint')
    .description('run one checkpoint by hand as the primary and print each phase duration as JSON')
    .option('--config <file>', 'YAML config file (flags override its fields)')
    .option('--reason <text>', 'reason recorded for the checkpoint', 'manual')
    .option('--ready-ms <ms>', 'longest wait for the secondary to connect, be seeded and say READY', '30000')
    .addOption(new Option('--ready-timeout <ms>', 'same as --ready-ms').hideHelp());
  declareFlags(command, checkpointFlags);
  command.action(async (opts: Record<string, unknown>) => {
    const readyMs = readyTimeout(opts);
    const config = loadCheckpointConfig(opts.config as string | undefined, opts, 'primary');
    const logger = createLogger();
    const { material, driver } = await prepareCheckpointRole(config, 'primary', logger);
    const coordinator = new Coordinator({
      driver,
      timeouts: config.timeouts,
      maxStateBytes: config.maxStateBytes,
      checkpointTimerMs: null,
      logger,
    });
    const reports: CheckpointReport[] = [];
    coordinator.on('checkpoint', (report) => reports.push(report));
    const endpoint = checkpointEndpoint(config);
    let link: Link | null = null;
    let result: Record<string, unknown>;
    try {
      link = await linkCoordinator(coordinator, endpoint, linkOptions(config.timeouts, material, logger));
      result = await runOnce(coordinator, reports, readyMs, String(opts.reason));
    } catch (err) {
      // Only a listening endpoint fails here (a dialling one retries until the ready timeout).
      result = {
        ok: false,
        error: 'COLO_CKPT_ENDPOINT',
        message: `cannot listen on ${formatEndpoint(endpoint)}: ${(err as Error).message}`,
      };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await coordinator.close();
    await link?.close();
    await driver.close?.();
    logger.flush();
    process.exitCode = result.ok ? 0 : EXIT_CHECKPOINT_FAILED;
  });
}

/** --ready-ms (or its former spelling, warned), a positive integer: else a usage error (exit 2). */
function readyTimeout(opts: Record<string, unknown>): number {
  let text = opts.readyMs as string;
  if (opts.readyTimeout !== undefined) {
    process.stderr.write('colo-proxy: --ready-timeout is deprecated: use --ready-ms\n');
    text = opts.readyTimeout as string;
  }
  const ms = Number(text);
  if (!/^\d+$/.test(text.trim()) || ms <= 0)
    throw new ConfigError('--ready-ms', 'a positive integer of milliseconds', text);
  return ms;
}

/**
 * Waits for 'ready' within readyTimeoutMs, then runs the checkpoint. A secondary lost before it was ready
 * (killed during the seeding, say) ends the wait at once with that loss: the peer was reached, so the
 * start-order wait is over, and redialling would hide the cause.
 */
async function runOnce(
  coordinator: Coordinator,
  reports: CheckpointReport[],
  readyTimeoutMs: number,
  reason: string,
): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  let onLost: ((event: LossEvent) => void) | undefined;
  let onReady: (() => void) | undefined;
  const notReady = await new Promise<Record<string, unknown> | null>((resolve) => {
    onReady = () => resolve(null);
    onLost = (event) =>
      resolve({
        ok: false,
        error: event.error.code,
        message: `the secondary was lost before it was ready: ${event.error.message}`,
      });
    coordinator.once('ready', onReady);
    coordinator.once('secondary-lost', onLost);
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          error: 'COLO_CKPT_NOT_PROTECTED',
          message: `the secondary was not ready within ${readyTimeoutMs} ms`,
        }),
      readyTimeoutMs,
    );
  });
  clearTimeout(timer);
  if (onReady) coordinator.off('ready', onReady);
  if (onLost) coordinator.off('secondary-lost', onLost);
  const seed = reports.find((r) => r.seeding);
  const seedDurationsMs = seed ? rounded(seed.durations) : null;
  if (notReady) return { ...notReady, seedDurationsMs };

  const reported = new Promise<CheckpointReport>((resolve) =>
    coordinator.on('checkpoint', (r) => !r.seeding && resolve(r)),
  );
  const outcome: CheckpointOutcome = await coordinator.checkpoint(reason);
  // A checkpoint that never started (the secondary went away meanwhile) emits no report: use the outcome.
  const report = outcome.ok || outcome.durations.total !== null ? await reported : outcome;
  return {
    ok: report.ok,
    reason: report.reason,
    ...(report.ok ? { stateBytes: report.stateBytes } : { error: report.error.code, message: report.error.message }),
    durationsMs: rounded(report.durations),
    seedDurationsMs,
  };
}

function rounded(durations: PhaseDurations): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [phase, ms] of Object.entries(durations)) out[phase] = ms === null ? null : Math.round(ms * 1000) / 1000;
  return out;
}
