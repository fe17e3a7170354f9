import { describe, expect, it } from 'vitest';
import { liveCaptureAvailable } from '../../proxy/ports/live.js';
import { LiveCaptureUnavailable } from '../../proxy/ports/capture.js';
import { RingCaptureUnavailable, ringCaptureAvailable } from '../../proxy/ports/packet-ring.js';
import { loadInlineConfig } from '../../src/config/inline.js';
import { chooseCapture } from '../../src/inline/app.js';
import { configError, configFiles, minimalInlineYaml } from '../support/config-files.js';

/** Choosing the capture backend: the `capture` config field, and the default when it is absent. */
const configs = configFiles('colo-ring-backend-');
function load(extra: string) {
  return loadInlineConfig(configs.write(`${minimalInlineYaml}${extra}\n`));
}

describe('capture backend', () => {
  it('takes capture: ring or pcap from the config, and leaves it unset by default', () => {
    expect(load('capture: ring').capture).toBe('ring');
    expect(load('capture: pcap').capture).toBe('pcap');
    expect(load('').capture).toBeUndefined();
  });

  it('rejects another value, naming the field and both choices', () => {
    const error = configError(() => load('capture: xdp'));
    expect(error.field).toBe('capture');
    expect(error.message).toMatch(/ring .*or pcap/);
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
