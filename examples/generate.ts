/** `npm run examples`: (re)writes examples/<name>/{primary,secondary}.pcap from examples/scenarios.ts. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExamples } from './scenarios.js';

const here = dirname(fileURLToPath(import.meta.url));
for (const pair of buildExamples()) {
  const dir = join(here, pair.name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'primary.pcap'), pair.primary);
  writeFileSync(join(dir, 'secondary.pcap'), pair.secondary);
  process.stdout.write(`examples/${pair.name}: ${pair.description}\n`);
}
