import { pino, type Logger, type LoggerOptions } from 'pino';
import { ConfigError } from './config/errors.js';

export type { Logger };

/** The levels `--log-level` and COLO_LOG_LEVEL accept (pino's), most to least severe. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** COLO_LOG_LEVEL (info when unset); a level pino does not know is a ConfigError naming the valid ones. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const level = env.COLO_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError('COLO_LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}`, level);
  }
  return level as LogLevel;
}

/**
 * One pino logger for the process. Disabled levels are no-ops in pino, so debug calls on the hot path
 * cost nothing unless COLO_LOG_LEVEL (or `--log-level`, which sets it) asks for them. Logs go to stderr:
 * stdout belongs to command output.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: logLevelFromEnv(), base: { app: 'colo-proxy' }, ...options },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** For tests and embedding: a logger that writes nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
