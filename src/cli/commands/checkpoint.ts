import type { Command } from 'commander';
import { Coordinator } from '../../checkpoint/coordinator.js';
import type { CheckpointReport, PhaseDurations } from '../../checkpoint/engine.js';
import { linkCoordinator } from '../../checkpoint/link.js';
import {
  checkpointEndpoint,
  checkpointFlags,
  loadCheckpointConfig,
  prepareCheckpointRole,
} from '../../config/checkpoint.js';
import { declareFlags } from '../../config/load.js';
import { createLogger } from '../../log.js';

/**
 * `colo-proxy checkpoint`: acts as the coordinator once. Connects (or listens), seeds the secondary, runs one
 * checkpoint and prints one JSON object with each phase's duration in milliseconds. Exit 1 if it failed.
 */
export function registerCheckpoint(program: Command): void {
  const command = program
    .command('checkpoint')
    .description('run one checkpoint by hand as the primary and print each phase duration as JSON')
    .option('--config <file>', 'YAML config file (flags override its fields)')
    .option('--reason <text>', 'reason recorded for the checkpoint', 'manual')
    .option('--ready-timeout <ms>', 'longest wait for the secondary to be seeded and READY', '30000');
  declareFlags(command, checkpointFlags);
  command.action(async (opts: Record<string, unknown>) => {
    const config = loadCheckpointConfig(opts.config as string | undefined, opts, 'primary');
    const logger = createLogger();
    const { material, driver } = await prepareCheckpointRole(config, logger);
    const coordinator = new Coordinator({
      driver,
      timeouts: config.timeouts,
      maxStateBytes: config.maxStateBytes,
      checkpointTimerMs: null,
      logger,
    });
    const reports: CheckpointReport[] = [];
    coordinator.on('checkpoint', (report) => reports.push(report));
    const readyTimeoutMs = Number(opts.readyTimeout);
    const ready = new Promise<string | null>((resolve) => {
      coordinator.once('ready', () => resolve(null));
      setTimeout(() => resolve(`the secondary was not ready within ${readyTimeoutMs} ms`), readyTimeoutMs).unref();
    });
    const link = await linkCoordinator(coordinator, checkpointEndpoint(config), {
      material,
      logger,
      connectTimeoutMs: config.timeouts.connectMs,
    });
    const notReady = await ready;
    let result: Record<string, unknown>;
    if (notReady) {
      result = { ok: false, error: 'COLO_CKPT_NOT_PROTECTED', message: notReady };
    } else {
      const reported = new Promise<CheckpointReport>((resolve) =>
        coordinator.on('checkpoint', (r) => !r.seeding && resolve(r)),
      );
      await coordinator.checkpoint(String(opts.reason));
      const report = await reported;
      const seed = reports.find((r) => r.seeding);
      result = {
        ok: report.ok,
        reason: report.reason,
        ...(report.ok
          ? { stateBytes: report.stateBytes }
          : { error: report.error.code, message: report.error.message }),
        durationsMs: rounded(report.durations),
        seedDurationsMs: seed ? rounded(seed.durations) : null,
      };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await coordinator.close();
    await link.close();
    await driver.close?.();
    process.exitCode = result.ok ? 0 : 1;
  });
}

function rounded(durations: PhaseDurations): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [phase, ms] of Object.entries(durations)) out[phase] = ms === null ? null : Math.round(ms * 1000) / 1000;
  return out;
}
