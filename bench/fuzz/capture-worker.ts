/**
 * Replays one mutated capture case per message, in a worker thread so the campaign can stop a replay that
 * runs past its time bound (a synchronous loop would never yield to a timer on the main thread).
 */
import { parentPort } from 'node:worker_threads';
import { replayFiles } from '../../src/replay/run.js';

export interface CaptureJob {
  files: { primary: string; secondary: string } | { pcapng: string; primaryIf: number; secondaryIf: number };
}

export type CaptureResult =
  | { ok: true; frames: number; unaccounted: number; readErrors: number; jumps: number; checkpoints: number }
  /** An error the replay reports at its edge (a capture it refuses): expected for hostile input. */
  | { ok: false; refused: true; error: string }
  | { ok: false; refused: false; error: string };

/** Refusals the replay documents for unreadable captures (exit 2 at the CLI); anything else is a crash. */
const REFUSALS = new Set(['CaptureCheckError', 'ConfigError', 'CaptureError']);

parentPort?.postMessage('ready');
parentPort?.on('message', (job: CaptureJob) => {
  replayFiles(job.files).then(
    (summary) => {
      const f = summary.frames;
      const result: CaptureResult = {
        ok: true,
        frames: f.primary + f.secondary,
        unaccounted: f.primary + f.secondary - (f.released + f.dropped + f.malformed + f.heldAtEnd),
        readErrors: summary.readErrors.length,
        jumps: summary.clock.jumps,
        checkpoints: summary.checkpoints.total,
      };
      parentPort?.postMessage(result);
    },
    (err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      const result: CaptureResult = {
        ok: false,
        refused: REFUSALS.has(error.name),
        error: `${error.name}: ${error.message}${REFUSALS.has(error.name) ? '' : `\n${error.stack ?? ''}`}`,
      };
      parentPort?.postMessage(result);
    },
  );
});
