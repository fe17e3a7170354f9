/**
 * After the first SIGINT/SIGTERM a command shuts down in order (flushing what it holds); a second one means
 * "now": the process says so on stderr and exits at once with status 128 + the signal's number.
 */
export function exitOnSecondSignal(command: string): void {
  const now = (signal: NodeJS.Signals): void => {
    process.stderr.write(`colo-proxy ${command}: ${signal} during shutdown: exiting at once\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
}
