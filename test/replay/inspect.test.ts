import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CompareEngine } from '../../compare/engine.js';
import { openCaptureFile } from '../../src/capture/open.js';
import type { ReplayEngine } from '../../src/replay/engine-port.js';
import { defaultReplayOptions } from '../../src/replay/options.js';
import { replay, type ReplaySource } from '../../src/replay/replay.js';

const examples = join(import.meta.dirname, '../../examples');

function source(path: string): ReplaySource {
  return { reader: openCaptureFile(path, { chunkSize: 4096 }), interface: null, size: 0 };
}

/** The real engine without inspect(): the replay then dissects each frame itself (the fallback path). */
function withoutInspect(engine: CompareEngine): ReplayEngine {
  return {
    push: (side, frame, start, now, tag) => engine.push(side, frame, start, now, tag),
    tick: (now) => engine.tick(now),
    flush: (now) => engine.flush(now),
  };
}

describe('replay with and without the engine dissecting once (inspect)', () => {
  for (const example of ['http', 'http-nondeterministic', 'resegmented']) {
    it(`${example}: the same summary either way`, async () => {
      const run = async (engine: ReplayEngine) => {
        const p = source(join(examples, example, 'primary.pcap'));
        const s = source(join(examples, example, 'secondary.pcap'));
        try {
          return await replay(p, s, engine, defaultReplayOptions);
        } finally {
          p.reader.close();
          s.reader.close();
        }
      };
      const direct = new CompareEngine();
      expect(typeof direct.inspect).toBe('function');
      const viaInspect = await run(direct);
      const viaOwnDissect = await run(withoutInspect(new CompareEngine()));
      expect(viaInspect).toEqual(viaOwnDissect);
      // Not vacuous: frames were counted per connection and the engine decided something.
      expect(viaInspect.connections.length).toBeGreaterThan(0);
      expect(viaInspect.connections.reduce((n, c) => n + c.primary + c.secondary, 0)).toBe(
        viaInspect.frames.primary + viaInspect.frames.secondary - viaInspect.frames.malformed,
      );
    });
  }
});
