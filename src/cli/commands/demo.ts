import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { formatSummary } from '../../replay/format.js';
import { replayFiles } from '../../replay/run.js';

/** The bundled example pairs (examples/README.md), in the order the demo shows them. */
export const exampleNames = ['http', 'http-nondeterministic', 'resegmented'] as const;

/**
 * The checkout's examples/: the nearest one up from this module, which runs from src/cli/commands/ (tsx) or
 * from dist/ (the bundle).
 */
function findExamplesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'examples');
    if (existsSync(join(candidate, 'README.md'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return join(process.cwd(), 'examples');
    dir = parent;
  }
}

const examplesDir = findExamplesDir();

/** The README's main job: replay the bundled example captures and summarise what the engine decided. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('replay the bundled example captures and summarise what the comparison engine decided')
    .action(async () => {
      for (const name of exampleNames) {
        const primary = join(examplesDir, name, 'primary.pcap');
        const secondary = join(examplesDir, name, 'secondary.pcap');
        if (!existsSync(primary) || !existsSync(secondary)) {
          process.stderr.write(`colo-proxy demo: examples/${name} is missing: run \`npm run examples\`\n`);
          process.exitCode = 1;
          continue;
        }
        const summary = await replayFiles({ primary, secondary });
        const shown = relative(process.cwd(), join(examplesDir, name)) || '.';
        process.stdout.write(`== ${name} (${shown}/{primary,secondary}.pcap)\n`);
        const text = formatSummary(summary, { maxDivergences: 3 });
        process.stdout.write(text.replace(/^(?=.)/gm, '   ') + '\n');
      }
      process.stdout.write(
        'Replay your own captures: colo-proxy replay --primary P.pcap --secondary S.pcap --json out.json\n',
      );
    });
}
