import type { Command } from 'commander';

/** The README's main job. Until the replay lab lands it only says so; it must not fail. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('replay the bundled example captures and summarise what the comparison engine decided')
    .action(() => {
      process.stdout.write('colo-proxy demo: not yet — the replay lab (bundled example captures) has not landed.\n');
    });
}
