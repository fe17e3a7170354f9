import { Command, CommanderError, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { ConfigError } from '../config/errors.js';
import { LOG_LEVELS, logLevelFromEnv } from '../log.js';
import { commands } from './commands/index.js';
import { EXIT_DONE, EXIT_FAILED, EXIT_USAGE, exitStatusHelp } from './exit-status.js';

// A reader that went away (`colo-proxy demo | head`) ends the output, not the process with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

const program = new Command('colo-proxy')
  .description('Userspace COLO proxy: mirror client traffic to two VMs, compare their output, checkpoint on divergence')
  .version(packageJson.version, '-V, --version', 'print the version')
  .addOption(
    new Option('--log-level <level>', 'log level for stderr (overrides COLO_LOG_LEVEL; default info)').choices(
      LOG_LEVELS,
    ),
  )
  .configureHelp({ showGlobalOptions: true })
  .addHelpText('afterAll', exitStatusHelp)
  .showHelpAfterError('(add --help for usage)')
  // commander's own messages ("error: unknown option '--x'") in the same one-line form as ours.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'colo-proxy: ')) })
  .exitOverride()
  .hook('preAction', () => {
    const level = program.opts<{ logLevel?: string }>().logLevel;
    if (level !== undefined) process.env.COLO_LOG_LEVEL = level;
    logLevelFromEnv();
  });

for (const register of commands) register(program);

/** Errors an operator can fix from one line; anything else is a bug and keeps its stack trace. */
function isExpected(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return err instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) && 'syscall' in err;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and --version end with 0; commander has already printed its message for everything else.
    process.exitCode = err.exitCode === 0 ? EXIT_DONE : EXIT_USAGE;
  } else if (err instanceof ConfigError) {
    for (const line of err.message.split('\n')) process.stderr.write(`colo-proxy: ${line}\n`);
    process.exitCode = EXIT_USAGE;
  } else if (isExpected(err)) {
    process.stderr.write(`colo-proxy: ${err.message}\n`);
    process.exitCode = EXIT_FAILED;
  } else {
    process.stderr.write(`colo-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT_FAILED;
  }
}
