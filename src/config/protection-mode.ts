import { z } from 'zod';
import {
  defaultModeThresholds,
  PROTECTION_MODES,
  type ModeThresholds,
  type ProtectionMode,
} from '../../compare/protection-mode.js';
import { issuesToConfigError, readConfigFile, type FlagSpec } from './load.js';

/**
 * The protection mode as configuration (compare/protection-mode.ts; docs/replay.md, "Protection modes"):
 * a `protection` mapping in YAML and one flag per field. Flags win over the file; the file over the defaults.
 */

export interface ProtectionConfig extends ModeThresholds {
  mode: ProtectionMode;
}

const d = defaultModeThresholds;
const ms = (what: string, fallback: number): z.ZodDefault<z.ZodNumber> =>
  z
    .number({ error: `${what}, in ms (a number > 0)` })
    .positive({ error: `${what}, in ms (a number > 0)` })
    .default(fallback);
const count = (what: string, fallback: number): z.ZodDefault<z.ZodNumber> =>
  z
    .number({ error: `${what} (an integer >= 0)` })
    .int({ error: `${what} (an integer >= 0)` })
    .nonnegative({ error: `${what} (an integer >= 0)` })
    .default(fallback);

export const protectionSchema = z.strictObject({
  mode: z
    .enum(PROTECTION_MODES as [ProtectionMode, ...ProtectionMode[]], { error: 'compare, periodic or hybrid' })
    .default('compare'),
  periodMs: ms('the periodic checkpoint period', d.periodMs),
  windowMs: ms('the window hybrid counts divergence checkpoints and pauses in', d.windowMs),
  maxDivergenceCheckpoints: count(
    'divergence checkpoints within the window that switch to periodic',
    d.maxDivergenceCheckpoints,
  ),
  maxPausedShare: z
    .number({ error: 'a share of time paused, above 0 and at most 1' })
    .gt(0, { error: 'a share of time paused, above 0 and at most 1' })
    .max(1, { error: 'a share of time paused, above 0 and at most 1' })
    .default(d.maxPausedShare),
  calmMs: ms('the shortest stay in periodic mode before switching back', d.calmMs),
  calmDivergences: count('background divergences within calmMs below which hybrid switches back', d.calmDivergences),
});

/** The protectionFlags as commander hands them over to `compare` and `replay`: strings, parsed by the specs. */
export interface ProtectionFlagValues {
  protectionMode?: string;
  protectionPeriodMs?: string;
  protectionWindowMs?: string;
  protectionMaxDivergenceCheckpoints?: string;
  protectionMaxPausedShare?: string;
  protectionCalmMs?: string;
  protectionCalmDivergences?: string;
}

/** `--protection-FIELD` for each field of the `protection` mapping (`run` and `compare`). */
export const protectionFlags: readonly FlagSpec[] = [
  {
    flag: '--protection-mode <mode>',
    path: 'protection.mode',
    description: 'compare, periodic or hybrid (default compare)',
  },
  {
    flag: '--protection-period-ms <ms>',
    path: 'protection.periodMs',
    description: `periodic: P, the checkpoint period (default ${d.periodMs})`,
    parse: numberFlag,
  },
  {
    flag: '--protection-window-ms <ms>',
    path: 'protection.windowMs',
    description: `hybrid: W, the window crowding is judged over (default ${d.windowMs})`,
    parse: numberFlag,
  },
  {
    flag: '--protection-max-divergence-checkpoints <n>',
    path: 'protection.maxDivergenceCheckpoints',
    description: `hybrid: more divergence checkpoints within W go periodic (default ${d.maxDivergenceCheckpoints})`,
    parse: numberFlag,
  },
  {
    flag: '--protection-max-paused-share <x>',
    path: 'protection.maxPausedShare',
    description: `hybrid: more of W paused goes periodic (default ${d.maxPausedShare})`,
    parse: numberFlag,
  },
  {
    flag: '--protection-calm-ms <ms>',
    path: 'protection.calmMs',
    description: `hybrid: Q, the shortest stay in periodic (default ${d.calmMs})`,
    parse: numberFlag,
  },
  {
    flag: '--protection-calm-divergences <n>',
    path: 'protection.calmDivergences',
    description: `hybrid: fewer background divergences within Q go back to compare (default ${d.calmDivergences})`,
    parse: numberFlag,
  },
];

/** The YAML file's `protection` mapping (other top-level keys are refused), merged under `overrides`. */
export function loadProtectionConfig(file: string | undefined, overrides: Partial<ProtectionConfig>): ProtectionConfig {
  const tree = file === undefined ? {} : readConfigFile(file);
  const root = z.strictObject({ protection: protectionSchema.prefault({}) });
  const input = { ...tree, protection: { ...((tree.protection as object | undefined) ?? {}), ...overrides } };
  const parsed = root.safeParse(input);
  if (!parsed.success) throw issuesToConfigError(root, parsed.error.issues, input);
  return parsed.data.protection;
}

/** A flag's text as a number, or the text itself so the schema names it. */
export function numberFlag(raw: string): number | string {
  const value = Number(raw);
  return raw.trim() !== '' && Number.isFinite(value) ? value : raw;
}

export function thresholdsOf(config: ProtectionConfig): ModeThresholds {
  const { mode: _mode, ...thresholds } = config;
  return thresholds;
}
