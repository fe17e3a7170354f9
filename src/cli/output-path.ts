import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';

/** The path that means standard output for the outputs that allow it (`--json -`, `--events -`). */
export const STDOUT_PATH = '-';

/**
 * Checks an output path before any work starts, so a typo in `--json /no/such/dir/x.json` costs nothing
 * instead of a whole replay: its directory exists and can be written, and the path is not a directory.
 * `-` passes when `allowStdout` (the caller then writes to standard output). Throws ConfigError naming
 * the flag.
 */
export function checkOutputPath(flag: string, path: string, allowStdout = false): void {
  if (path === STDOUT_PATH) {
    if (allowStdout) return;
    throw new ConfigError(flag, 'a file path (standard output, "-", is not offered for this output)', path);
  }
  if (path === '') throw new ConfigError(flag, 'a file path', path);
  const dir = dirname(resolve(path));
  const problem = directoryProblem(dir) ?? targetProblem(path);
  if (problem !== null) throw new ConfigError(flag, `a writable file path (${problem})`, path);
}

function directoryProblem(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `directory ${dir} does not exist`;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return `directory ${dir} is not writable`;
    return `directory ${dir}: ${(err as Error).message}`;
  }
}

function targetProblem(path: string): string | null {
  try {
    if (statSync(path).isDirectory()) return 'it is a directory';
    accessSync(path, constants.W_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'the file is not writable';
    return (err as Error).message;
  }
}
