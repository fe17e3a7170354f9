import type { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerCompare } from './compare.js';
import { registerReplay } from './replay.js';
import { registerLabGuest } from '../../lab/guest-main.js';
import { registerSecondary } from './secondary.js';
import { registerCheckpoint } from './checkpoint.js';
import { registerRun } from './run.js';

/** Every subcommand registers itself here: one line per command. */
export const commands: ReadonlyArray<(program: Command) => void> = [
  registerDemo,
  registerCompare,
  registerReplay,
  registerLabGuest,
  registerSecondary,
  registerCheckpoint,
  registerRun,
];
