import type { Command } from 'commander';
import { Agent } from '../../checkpoint/agent.js';
import { linkAgent, linkOptions } from '../../checkpoint/link.js';
import { formatEndpoint } from '../../checkpoint/transport.js';
import { prepareCheckpointRole } from '../../checkpoint/drivers/index.js';
import { checkpointFlags } from '../../config/checkpoint-flags.js';
import { checkpointEndpoint, loadCheckpointConfig } from '../../config/checkpoint.js';
import { declareFlags } from '../../config/load.js';
import { createLogger } from '../../log.js';

/** Exit status after the primary was lost: the supervisor fails over to this VM. */
export const EXIT_PRIMARY_LOST = 3;

/** Exit status when the control endpoint cannot be set up (e.g. the listening address is taken). */
export const EXIT_FAILED = 1;

/**
 * `colo-proxy secondary`: the checkpoint agent. Prints one JSON object per line on stdout for each event
 * (listening or connecting, ready, checkpoint, dropped, primary-lost); logs go to stderr. A primary that is
 * not up yet is waited for without limit (redialled with backoff, logged). Runs until the primary is lost
 * (exit 3) or SIGINT/SIGTERM (exit 0); 2 is a usage or configuration error, 1 an endpoint that cannot be
 * set up (docs/protocol.md, "Exit statuses").
 */
export function registerSecondary(program: Command): void {
  const command = program
    .command('secondary')
    .description('run the checkpoint agent: receive the primary state at each checkpoint and load it into the VM')
    .option('--config <file>', 'YAML config file (flags override its fields)')
    .option(
      '--seed-only',
      'never announce extensions (open with READY); without it a seed-only primary is detected on its own',
    );
  declareFlags(command, checkpointFlags);
  command.action(async (opts: Record<string, unknown>) => {
    const config = loadCheckpointConfig(opts.config as string | undefined, opts, 'secondary');
    const logger = createLogger();
    const { material, driver } = await prepareCheckpointRole(config, 'secondary', logger);
    const agent = new Agent({
      driver,
      timeouts: config.timeouts,
      maxStateBytes: config.maxStateBytes,
      extensions: opts.seedOnly !== true,
      logger,
    });
    const print = (event: Record<string, unknown>): void => {
      process.stdout.write(`${JSON.stringify(event)}\n`);
    };
    agent.on('ready', (e) => print({ event: 'ready', ...e }));
    agent.on('checkpoint', (report) => print({ event: 'checkpoint', ...report }));
    agent.on('dropped', (e) => print({ event: 'dropped', reason: e.reason, message: e.error.message }));
    const done = new Promise<number>((resolve) => {
      agent.on('primary-lost', (e) => {
        print({ event: 'primary-lost', reason: e.reason, message: e.error.message });
        resolve(EXIT_PRIMARY_LOST);
      });
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(0));
    });
    const endpoint = checkpointEndpoint(config);
    let link;
    try {
      link = await linkAgent(agent, endpoint, linkOptions(config.timeouts, material, logger));
    } catch (err) {
      // Only a listening endpoint can fail here (a dialling one retries): say which, without a stack.
      process.stderr.write(
        `colo-proxy secondary: cannot listen on ${formatEndpoint(endpoint)}: ${(err as Error).message}\n`,
      );
      await driver.close?.();
      logger.flush();
      process.exitCode = EXIT_FAILED;
      return;
    }
    const listens = link.endpoint.mode === 'listen';
    print({ event: listens ? 'listening' : 'connecting', endpoint: formatEndpoint(link.endpoint) });
    const status = await done;
    await agent.close();
    await link.close();
    await driver.close?.();
    logger.flush();
    process.exitCode = status;
  });
}
