import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { defaultModeThresholds } from '../../compare/protection-mode.js';
import { loadInlineConfig, runFlags } from '../../src/config/inline.js';
import { declareFlags } from '../../src/config/load.js';
import { configError, configFiles, minimalInlineYaml } from '../support/config-files.js';

/** `colo-proxy run`'s `protection` mapping and its --protection-* flags (docs/configuration.md). */

const configs = configFiles('colo-protection-config-');
const load = (yaml: string, argv: string[] = []) => {
  const command = declareFlags(new Command('run').exitOverride(), runFlags);
  command.parse(argv, { from: 'user' });
  return loadInlineConfig(configs.write(`${minimalInlineYaml}${yaml}`), command.opts()).protection;
};
const errorOf = (yaml: string, argv: string[] = []) => configError(() => load(yaml, argv));

describe('protection config (colo-proxy run)', () => {
  it('is compare mode with the documented thresholds when absent', () => {
    expect(load('')).toEqual({
      mode: 'compare',
      periodMs: 100,
      windowMs: 500,
      maxDivergenceCheckpoints: 12,
      maxPausedShare: 0.45,
      calmMs: 2000,
      calmDivergences: 20,
    });
    // The documented figures are the controller's own defaults.
    expect(load('')).toEqual({ mode: 'compare', ...defaultModeThresholds });
    expect(load('protection: {}\n')).toEqual(load(''));
  });

  it('takes every field from the YAML, the rest from the defaults', () => {
    expect(load('protection: { mode: periodic, periodMs: 250 }\n')).toEqual({
      ...defaultModeThresholds,
      mode: 'periodic',
      periodMs: 250,
    });
    const yaml = `protection:
  mode: hybrid
  periodMs: 50
  windowMs: 1000
  maxDivergenceCheckpoints: 3
  maxPausedShare: 0.3
  calmMs: 1500
  calmDivergences: 0
`;
    expect(load(yaml)).toEqual({
      mode: 'hybrid',
      periodMs: 50,
      windowMs: 1000,
      maxDivergenceCheckpoints: 3,
      maxPausedShare: 0.3,
      calmMs: 1500,
      calmDivergences: 0,
    });
  });

  it('each flag overrides its field of the YAML, and only that field', () => {
    const yaml = 'protection: { mode: periodic, periodMs: 250, windowMs: 800, calmMs: 4000 }\n';
    expect(load(yaml, ['--protection-mode', 'hybrid', '--protection-period-ms', '75'])).toEqual({
      ...defaultModeThresholds,
      mode: 'hybrid',
      periodMs: 75,
      windowMs: 800,
      calmMs: 4000,
    });
    const argv = [
      '--protection-window-ms',
      '2000',
      '--protection-max-divergence-checkpoints',
      '5',
      '--protection-max-paused-share',
      '0.6',
      '--protection-calm-ms',
      '3000',
      '--protection-calm-divergences',
      '7',
    ];
    expect(load(yaml, argv)).toEqual({
      mode: 'periodic',
      periodMs: 250,
      windowMs: 2000,
      maxDivergenceCheckpoints: 5,
      maxPausedShare: 0.6,
      calmMs: 3000,
      calmDivergences: 7,
    });
    // Without a protection mapping in the file, too.
    expect(load('', ['--protection-mode', 'periodic'])).toEqual({ ...defaultModeThresholds, mode: 'periodic' });
  });

  it('names the field and what it expects for a bad value, from the YAML or a flag', () => {
    const cases: Array<[string, string[], string, string]> = [
      ['protection: { mode: fast }\n', [], 'protection.mode', 'compare, periodic or hybrid'],
      ['protection: { windowMs: 0 }\n', [], 'protection.windowMs', 'a number > 0'],
      ['protection: { periodMs: -5 }\n', [], 'protection.periodMs', 'a number > 0'],
      ['protection: { calmMs: soon }\n', [], 'protection.calmMs', 'a number > 0'],
      ['protection: { maxDivergenceCheckpoints: 2.5 }\n', [], 'protection.maxDivergenceCheckpoints', 'integer >= 0'],
      ['protection: { calmDivergences: -1 }\n', [], 'protection.calmDivergences', 'integer >= 0'],
      ['protection: { maxPausedShare: 0 }\n', [], 'protection.maxPausedShare', 'at most 1'],
      ['protection: { maxPausedShare: 1.5 }\n', [], 'protection.maxPausedShare', 'at most 1'],
      ['protection: { perodMs: 100 }\n', [], 'protection.perodMs', 'periodMs'],
      ['protection: hybrid\n', [], 'protection', ''],
      ['', ['--protection-mode', 'fast'], 'protection.mode', 'compare, periodic or hybrid'],
      ['', ['--protection-window-ms', '0'], 'protection.windowMs', 'a number > 0'],
      ['', ['--protection-period-ms', 'often'], 'protection.periodMs', 'a number > 0'],
      ['protection: { mode: hybrid }\n', ['--protection-calm-divergences', '-2'], 'protection.calmDivergences', '>= 0'],
    ];
    for (const [yaml, argv, field, expected] of cases) {
      const what = `${yaml.trim()} ${argv.join(' ')}`;
      const err = errorOf(yaml, argv);
      expect(err.field, what).toBe(field);
      expect(err.message, what).toContain(expected);
    }
  });
});
