import { describe, expect, it } from 'vitest';
import { parseCompareFlags } from '../../src/cli/commands/compare.js';
import { replayOptions } from '../../src/cli/commands/replay.js';
import { loadInlineConfig } from '../../src/config/inline.js';
import { collectRule, passthroughFromFlags } from '../../src/config/passthrough.js';
import { compareFlags, configError, configFiles, minimalInlineYaml } from '../support/config-files.js';

const configs = configFiles('colo-passthrough-config-');
function load(extra: string) {
  return loadInlineConfig(configs.write(`${minimalInlineYaml}${extra}`));
}

describe('the passthrough list of run’s YAML', () => {
  it('is empty by default and reads each rule', () => {
    expect(load('').passthrough).toEqual([]);
    const rules = load('passthrough: ["tcp:22", "udp:5353,10.0.0.0/8"]').passthrough;
    expect(rules.map((r) => r.text)).toEqual(['tcp:22', 'udp:5353,10.0.0.0/8']);
  });

  it('names the list index, the rule and what was expected', () => {
    const error = configError(() => load('passthrough:\n  - tcp:22\n  - tcp:22-10'));
    expect(error.field).toBe('passthrough.1');
    expect(error.message).toMatch(/LOW <= HIGH in rule "tcp:22-10"/);
    expect(configError(() => load('passthrough: tcp:22')).field).toBe('passthrough');
  });
});

describe('the --passthrough flag', () => {
  it('collects every use, in order', () => {
    expect(collectRule('b', collectRule('a', undefined))).toEqual(['a', 'b']);
    expect(passthroughFromFlags('--passthrough', ['icmp', 'fd00::/8']).map((r) => r.text)).toEqual([
      'icmp',
      'any,fd00::/8',
    ]);
  });

  it('reaches the drop-in’s settings and the replay’s options, refusing a bad rule by name', () => {
    const flags = compareFlags({ passthrough: ['tcp:22'] });
    expect(parseCompareFlags(flags).passthrough?.map((r) => r.text)).toEqual(['tcp:22']);
    const error = configError(() => parseCompareFlags({ ...flags, passthrough: ['tcp:22', 'udp:dns'] }));
    expect(error.field).toBe('--passthrough udp:dns');
    expect(error.message).toMatch(/expected a port N or a range/);

    const replay = {
      compareTimeout: '3000',
      expiredScanCycle: '1000',
      maxQueueSize: '1024',
      checkpointTimer: '0',
      checkpointDuration: '20',
      speed: '0',
    };
    expect(replayOptions({ ...replay, passthrough: ['udp:5353'] }).passthrough?.map((r) => r.text)).toEqual([
      'udp:5353',
    ]);
    expect(replayOptions(replay).passthrough).toEqual([]);
    expect(configError(() => replayOptions({ ...replay, passthrough: ['10.0.0.0/40'] })).field).toBe(
      '--passthrough 10.0.0.0/40',
    );
  });
});
