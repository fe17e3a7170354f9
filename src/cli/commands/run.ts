import type { Command } from 'commander';
import { LiveCaptureUnavailable } from '../../../proxy/ports/capture.js';
import { loadInlineConfig, runFlags } from '../../config/inline.js';
import { declareFlags } from '../../config/load.js';
import { collectRule, passthroughFromFlags } from '../../config/passthrough.js';
import { startInlineApp } from '../../inline/app.js';
import { OffloadError } from '../../inline/offloads.js';
import {
  checkCanSwitch,
  describeIdentity,
  dropPrivileges,
  handOverDirectory,
  resolveIdentity,
  type Identity,
} from '../../inline/privileges.js';
import { createLogger, type Logger } from '../../log.js';
import { checkOutputPath } from '../output-path.js';
import { exitOnSecondSignal } from '../signals.js';

/**
 * Exit status when the host lacks something `run` needs (a capture backend, offloads off): fix the host, not
 * the config. Documented in `--help` (src/cli/exit-status.ts) and docs/inline.md.
 */
export const EXIT_HOST_NOT_READY = 4;

/**
 * `colo-proxy run --config FILE`: the inline proxy between the client side and the two VMs. Prints one JSON
 * object per line on stdout for each event (started, mode, ready, divergence, checkpoint-start,
 * checkpoint-loaded, checkpoint, secondary-lost, primary-health, oversized); logs go to stderr. Runs until
 * SIGINT or SIGTERM: every held primary frame is then flushed to the client (one log line with the count),
 * and a second signal exits at once. docs/inline.md describes the config file.
 */
export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description('run the inline proxy on three interfaces (client, primary VM, secondary VM)')
    .requiredOption('--config <file>', 'YAML config file (docs/inline.md)');
  declareFlags(command, runFlags)
    .option(
      '--passthrough <rule>',
      'release flows matching RULE uncompared, after the YAML list (repeatable)',
      collectRule,
    )
    .action(async (opts: { config: string; passthrough?: string[] } & Record<string, unknown>) => {
      const config = loadInlineConfig(opts.config, opts);
      config.passthrough = [...config.passthrough, ...passthroughFromFlags('--passthrough', opts.passthrough)];
      if (config.events !== undefined) checkOutputPath('events', config.events);
      if (config.divergences !== undefined) checkOutputPath('divergences', config.divergences);
      // Before anything opens: an unknown user fails the start, not the switch after capture is up.
      const identity = config.privileges === undefined ? null : resolveIdentity(config.privileges);
      if (identity !== null) checkCanSwitch(identity);
      const logger = createLogger();
      const print = (event: object): void => {
        process.stdout.write(`${JSON.stringify(event)}\n`);
      };
      let app;
      try {
        // Root is given up as soon as everything that needs it is open (src/inline/app.ts says when).
        const afterOpen = (): void => becomeConfiguredUser(identity, logger, config.checkpoint.driver);
        app = await startInlineApp(config, logger, { onEvent: print, afterOpen });
      } catch (err) {
        if (err instanceof LiveCaptureUnavailable || err instanceof OffloadError) {
          process.stderr.write(`colo-proxy run: ${err.message}\n`);
          process.exitCode = EXIT_HOST_NOT_READY;
          return;
        }
        throw err;
      }
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
      });
      exitOnSecondSignal('run');
      // Before anything closes: every held primary frame goes to the client while its port is open.
      const flush = app.proxy.shutdown();
      if (flush.sendFailures === 0) {
        logger.info(flush, `shutdown: ${flush.flushedFrames} held primary frames flushed to the client`);
      } else {
        logger.error(
          flush,
          `shutdown: ${flush.flushedFrames} held primary frames flushed, ${flush.sendFailures} of them refused by the client port`,
        );
      }
      await app.close();
      print({ event: 'stopped', time: Date.now(), status: app.status() });
      logger.flush();
    });
}

/** Drops to the configured user, or warns that `run` keeps root; one log line either way. */
function becomeConfiguredUser(
  identity: Identity | null,
  logger: Logger,
  driver: { kind: string; workDir?: string },
): void {
  if (identity === null) {
    logger.warn('run keeps root: set privileges.user (docs/inline.md, "Privileges") to drop it once capture is open');
    return;
  }
  if (process.getuid?.() !== 0) {
    logger.info({ uid: identity.uid }, `privileges: already running as ${describeIdentity(identity)}`);
    return;
  }
  if (driver.kind === 'qemu' && driver.workDir !== undefined) handOverDirectory(driver.workDir, identity);
  const now = dropPrivileges(identity);
  logger.info(
    { uid: now.uid, gid: now.gid, groups: now.groups, capEff: now.capEff },
    `privileges: dropped root to ${describeIdentity(identity)}; capabilities now ${now.capEff}`,
  );
}
