import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCaptureBuffer, openCaptureFile, readAll } from '../../src/capture/open.js';
import { corpusFrame, malformedCorpus } from './corpus.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-corpus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('malformed capture corpus', () => {
  for (const entry of malformedCorpus()) {
    it(`${entry.name}: ${entry.code} at byte ${entry.offset} after ${entry.framesBefore} frames`, () => {
      const { frames, error } = readAll(openCaptureBuffer(entry.bytes, entry.name));
      expect(error).not.toBeNull();
      expect({ code: error?.code, offset: error?.offset, file: error?.file }).toEqual({
        code: entry.code,
        offset: entry.offset,
        file: entry.name,
      });
      expect(error?.message).toContain(`${entry.name}: byte offset ${entry.offset}: ${entry.code}`);
      // What came before the bad structure is still delivered, intact.
      expect(frames.map((f) => f.data)).toEqual(Array.from({ length: entry.framesBefore }, (_, i) => corpusFrame(i)));
    });

    it(`${entry.name}: the same error when streamed from a file in 7-byte chunks`, () => {
      const path = join(dir, entry.name);
      writeFileSync(path, entry.bytes);
      const { frames, error } = readAll(openCaptureFile(path, { chunkSize: 7 }));
      expect({ code: error?.code, offset: error?.offset, file: error?.file, frames: frames.length }).toEqual({
        code: entry.code,
        offset: entry.offset,
        file: path,
        frames: entry.framesBefore,
      });
    });
  }
});
