import { EXIT_PRIMARY_LOST } from './commands/secondary.js';
import { EXIT_HOST_NOT_READY } from './commands/run.js';

/** The exit-status rule every subcommand follows; the two extra statuses belong to one command each. */
export const EXIT_DONE = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Shown at the end of every --help page, and in the README. */
export const exitStatusHelp = `
Exit status (every command):
  ${EXIT_DONE}  done
  ${EXIT_FAILED}  failed at run time (a capture bad from some offset on, a failed checkpoint, a write error)
  ${EXIT_USAGE}  usage or configuration: a bad flag or config field, an input or output path that cannot be used
  ${EXIT_PRIMARY_LOST}  secondary only: the primary was lost (fail over to this VM)
  ${EXIT_HOST_NOT_READY}  run only: the host is not ready (capture backend missing, offloads on)
`;
