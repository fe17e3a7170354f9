import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { liveCaptureAvailable } from '../../proxy/ports/live.js';
import { LiveCaptureUnavailable } from '../../proxy/ports/capture.js';
import { RingCaptureUnavailable, ringCaptureAvailable } from '../../proxy/ports/packet-ring.js';
import { ConfigError } from '../../src/config/errors.js';
import { loadInlineConfig } from '../../src/config/inline.js';
import { chooseCapture } from '../../src/inline/app.js';

/** Choosing the capture backend: the `capture` config field, and the default when it is absent. */
const dir = mkdtempSync(join(tmpdir(), 'colo-ring-backend-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function load(extra: string) {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(
    file,
    `interfaces: { client: xcli, primary: xpri, secondary: xsec }
checkpoint:
  endpoint: connect:unix:/run/colo/agent.sock
  plaintext: true
  driver: { kind: lab, control: /run/colo/primary.sock }
${extra}
`,
  );
  return loadInlineConfig(file);
}

describe('capture backend', () => {
  it('takes capture: ring or pcap from the config, and leaves it unset by default', () => {
    expect(load('capture: ring').capture).toBe('ring');
    expect(load('capture: pcap').capture).toBe('pcap');
    expect(load('').capture).toBeUndefined();
  });

  it('rejects another value, naming the field and both choices', () => {
    let error: unknown;
    try {
      load('capture: xdp');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe('capture');
    expect((error as Error).message).toMatch(/ring .*or pcap/);
  });

  it('a configured backend is used as given', () => {
    expect(chooseCapture('pcap')).toBe('pcap');
    expect(chooseCapture('ring')).toBe('ring');
  });

  it('defaults to ring when the addon is built, else pcap when cap is, else says what to install', () => {
    if (ringCaptureAvailable()) expect(chooseCapture(undefined)).toBe('ring');
    else if (liveCaptureAvailable()) expect(chooseCapture(undefined)).toBe('pcap');
    else expect(() => chooseCapture(undefined)).toThrow(RingCaptureUnavailable);
  });

  it('a missing addon is a LiveCaptureUnavailable (run exits 4) that says what to install', () => {
    const error = new RingCaptureUnavailable(new Error('Cannot find module'), false);
    expect(error).toBeInstanceOf(LiveCaptureUnavailable);
    expect(error.message).toContain('apt-get install build-essential python3');
    expect(error.message).toContain('apt-get install libpcap-dev');
    expect(new RingCaptureUnavailable(null).message).toContain('capture: pcap');
  });
});
