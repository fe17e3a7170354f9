import type { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerLabGuest } from '../../lab/guest-main.js';

/** Every subcommand registers itself here: one line per command. */
export const commands: ReadonlyArray<(program: Command) => void> = [registerDemo, registerLabGuest];
