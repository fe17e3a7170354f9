import type { WriteStream } from 'node:tty';
import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../../src/replay/progress.js';

function fakeTerminal(): { stream: WriteStream; written: string[] } {
  const written: string[] = [];
  const stream = { isTTY: true, write: (text: string) => written.push(text) } as unknown as WriteStream;
  return { stream, written };
}

describe('replay progress bar', () => {
  it('redraws one line in place and ends it once', () => {
    const { stream, written } = fakeTerminal();
    const bar = new ProgressBar(stream);
    bar.update({ frames: 500, fraction: 0.5, virtualMs: 1500 });
    bar.update({ frames: 1000, fraction: 1, virtualMs: 3000 });
    bar.done();
    bar.done();
    expect(written).toEqual([
      `\r[${'#'.repeat(15)}${'-'.repeat(15)}]  50% 500 frames, 1.5 s virtual`,
      `\r[${'#'.repeat(30)}] 100% 1000 frames, 3.0 s virtual`,
      '\n',
    ]);
  });

  it('shows an unknown fraction as ?', () => {
    const { stream, written } = fakeTerminal();
    new ProgressBar(stream).update({ frames: 3, fraction: NaN, virtualMs: 0 });
    expect(written[0]).toContain('  ?% 3 frames');
  });

  it('is not created when stderr is not a terminal', () => {
    const saved = process.stderr.isTTY;
    try {
      Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
      expect(ProgressBar.forStderr()).toBeNull();
      Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
      expect(ProgressBar.forStderr()).toBeInstanceOf(ProgressBar);
    } finally {
      Object.defineProperty(process.stderr, 'isTTY', { value: saved, configurable: true });
    }
  });
});
