import type { Command } from 'commander';
import { registerDemo } from './demo.js';

/** Every subcommand registers itself here: one line per command. */
export const commands: ReadonlyArray<(program: Command) => void> = [registerDemo];
