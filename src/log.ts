import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * One pino logger for the process. Disabled levels are no-ops in pino, so debug calls on the hot path
 * cost nothing unless COLO_LOG_LEVEL asks for them. Logs go to stderr: stdout belongs to command output.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: process.env.COLO_LOG_LEVEL ?? 'info', base: { app: 'colo-proxy' }, ...options },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** For tests and embedding: a logger that writes nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
