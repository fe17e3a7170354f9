import type { WriteStream } from 'node:tty';
import type { ReplayProgress } from './replay.js';

/** A one-line progress bar, redrawn in place; only ever used when the stream is a terminal. */
export class ProgressBar {
  private drawn = false;

  constructor(private readonly stream: WriteStream) {}

  /** A bar for stderr when it is a terminal, otherwise null: no progress output in pipes and logs. */
  static forStderr(): ProgressBar | null {
    const stderr = process.stderr as WriteStream;
    return stderr.isTTY ? new ProgressBar(stderr) : null;
  }

  update(p: ReplayProgress): void {
    const width = 30;
    const fraction = Number.isNaN(p.fraction) ? 0 : p.fraction;
    const filled = Math.round(fraction * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const percent = Number.isNaN(p.fraction) ? '  ?' : String(Math.round(fraction * 100)).padStart(3);
    this.stream.write(`\r[${bar}] ${percent}% ${p.frames} frames, ${(p.virtualMs / 1000).toFixed(1)} s virtual`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
