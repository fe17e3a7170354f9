import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { ConfigError } from '../config/errors.js';

// A reader that went away (`colo-proxy demo | head`) ends the output, not the process with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

const program = new Command('colo-proxy')
  .description('Userspace COLO proxy: mirror client traffic to two VMs, compare their output, checkpoint on divergence')
  .showHelpAfterError()
  .exitOverride();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof ConfigError) {
    process.stderr.write(`colo-proxy: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`colo-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
