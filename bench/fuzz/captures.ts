/**
 * The replay campaign: mutated capture pairs (bench/fuzz/capture-mutator.ts) replayed through src/replay's
 * API one at a time in a worker thread. A replay that runs past the time bound is a hang (the worker is
 * stopped and a fresh one takes over); an error other than the replay's documented refusals is a crash.
 * The files of every hang and crash are kept, named in the report, to reproduce it with `colo-proxy replay`.
 */
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CaptureMutator, type CaptureCase } from './capture-mutator.js';
import type { CaptureJob, CaptureResult } from './capture-worker.js';
import { Rng } from './rng.js';

export interface CaptureCampaignOptions {
  captures: number;
  seed: number;
  /** Wall time one replay may take (ms) before it counts as a hang. */
  boundMs?: number;
  /** The example directories whose primary.pcap and secondary.pcap are mutated. */
  examples: string[];
}

export interface CaptureFailure {
  seed: number;
  index: number;
  mutations: string[];
  kind: 'hang' | 'crash';
  /** Where the mutated files were kept. */
  files: string;
  error: string;
}

export interface CaptureReport {
  captures: number;
  crashes: number;
  hangs: number;
  /** Frames read minus the fates the replay summary gives them (released, dropped, malformed, held at end). */
  unaccounted: number;
  replayed: number;
  /** Cases the replay refused at its edge (unreadable header, bad interface, ...). */
  refused: number;
  /** Replays that ended with a read error in the summary (everything before it replayed). */
  readErrors: number;
  frames: number;
  clockJumps: number;
  slowestMs: number;
  failures: CaptureFailure[];
}

const WORKER_START_MS = 60_000;

export async function runCaptureCampaign(options: CaptureCampaignOptions): Promise<CaptureReport> {
  const boundMs = options.boundMs ?? 5000;
  const pairs = options.examples.map((dir) => ({
    primary: readFileSync(join(dir, 'primary.pcap')),
    secondary: readFileSync(join(dir, 'secondary.pcap')),
  }));
  const mutator = new CaptureMutator(new Rng(options.seed ^ 0x0ca9_7e55), pairs);
  const dir = mkdtempSync(join(tmpdir(), 'colo-fuzz-captures-'));
  const report: CaptureReport = {
    captures: 0,
    crashes: 0,
    hangs: 0,
    unaccounted: 0,
    replayed: 0,
    refused: 0,
    readErrors: 0,
    frames: 0,
    clockJumps: 0,
    slowestMs: 0,
    failures: [],
  };
  let worker = await startWorker();
  try {
    for (let index = 0; index < options.captures; index++) {
      const c = mutator.next();
      const caseDir = join(dir, String(index));
      mkdirSync(caseDir);
      const job = writeCase(c, caseDir);
      report.captures++;
      const started = performance.now();
      const result = await runJob(worker, job, boundMs);
      report.slowestMs = Math.max(report.slowestMs, Math.round(performance.now() - started));
      if (result === 'hang') {
        report.hangs++;
        report.failures.push({
          seed: options.seed,
          index,
          mutations: c.mutations,
          kind: 'hang',
          files: caseDir,
          error: `no result within ${boundMs} ms`,
        });
        await worker.terminate();
        worker = await startWorker();
        continue;
      }
      if (result.ok) {
        report.replayed++;
        report.frames += result.frames;
        report.unaccounted += Math.abs(result.unaccounted);
        report.readErrors += result.readErrors > 0 ? 1 : 0;
        report.clockJumps += result.jumps;
      } else if (result.refused) {
        report.refused++;
      } else {
        report.crashes++;
        report.failures.push({
          seed: options.seed,
          index,
          mutations: c.mutations,
          kind: 'crash',
          files: caseDir,
          error: result.error,
        });
      }
      if (!report.failures.some((f) => f.index === index)) rmSync(caseDir, { recursive: true });
    }
  } finally {
    await worker.terminate();
    if (report.failures.length === 0) rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

function writeCase(c: CaptureCase, dir: string): CaptureJob {
  if (c.kind === 'pcapng') {
    const file = join(dir, 'both.pcapng');
    writeFileSync(file, c.file);
    return { files: { pcapng: file, primaryIf: 0, secondaryIf: 1 } };
  }
  const primary = join(dir, 'primary.pcap');
  const secondary = join(dir, 'secondary.pcap');
  writeFileSync(primary, c.primary);
  writeFileSync(secondary, c.secondary);
  return { files: { primary, secondary } };
}

/**
 * A worker that registers tsx itself before importing the TypeScript worker module, so it runs the same under
 * node and under vitest (Node 20 refuses a .ts worker entry even with --import tsx).
 */
async function startWorker(): Promise<Worker> {
  // tsx's ESM API (its CommonJS one cannot register from an eval'd worker).
  const tsxApi = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const entry = new URL('./capture-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  const worker = new Worker(boot, { eval: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`capture worker not ready after ${WORKER_START_MS} ms`)),
      WORKER_START_MS,
    );
    worker.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return worker;
}

/** The worker's answer, or 'hang' past the bound; an uncaught error in the worker is a crash. */
function runJob(worker: Worker, job: CaptureJob, boundMs: number): Promise<CaptureResult | 'hang'> {
  return new Promise((resolve) => {
    const done = (result: CaptureResult | 'hang'): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      resolve(result);
    };
    const onMessage = (result: CaptureResult): void => done(result);
    const onError = (err: Error): void =>
      done({ ok: false, refused: false, error: `uncaught in worker: ${err.stack ?? err.message}` });
    const timer = setTimeout(() => done('hang'), boundMs);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.postMessage(job);
  });
}
