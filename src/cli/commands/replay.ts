import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import type { Divergence } from '../../../compare/types.js';
import { DivergenceRecorder } from '../../capture/divergence-recorder.js';
import { ConfigError } from '../../config/errors.js';
import { collectRule, passthroughFromFlags } from '../../config/passthrough.js';
import { declareFlags, flagsToOverrides, type FlagSpec } from '../../config/load.js';
import {
  loadProtectionConfig,
  protectionFlags,
  thresholdsOf,
  type ProtectionConfig,
  type ProtectionFlagValues,
} from '../../config/protection-mode.js';
import { formatSummary } from '../../replay/format.js';
import { ProgressBar } from '../../replay/progress.js';
import { defaultReplayOptions, type ReplayOptions } from '../../replay/options.js';
import type { ReplayHooks } from '../../replay/replay.js';
import { checkCaptures, replayFiles, type ReplayFiles } from '../../replay/run.js';
import type { ReplaySummary } from '../../replay/summary.js';
import { renderReport } from '../../report/html.js';
import { createLogger } from '../../log.js';
import { EventLog } from '../../stats/events.js';
import { checkOutputPath, STDOUT_PATH } from '../output-path.js';

interface ReplayFlags extends ProtectionFlagValues {
  primary?: string;
  secondary?: string;
  pcapng?: string;
  primaryIf?: string;
  secondaryIf?: string;
  compareTimeout: string;
  expiredScanCycle: string;
  maxQueueSize: string;
  checkpointTimer: string;
  checkpointDuration: string;
  speed: string;
  json?: string;
  divergences?: string;
  report?: string;
  events?: string;
  quiet?: boolean;
  passthrough?: string[];
  guestBusyShare?: string;
  modeConfig?: string;
}

/** The protection flags `run` and `compare` take, with replay's earlier spellings kept as hidden aliases. */
const formerSpellings: Record<string, string> = {
  'protection.mode': '--mode',
  'protection.periodMs': '--period',
  'protection.windowMs': '--hybrid-window',
  'protection.maxDivergenceCheckpoints': '--hybrid-max-checkpoints',
  'protection.maxPausedShare': '--hybrid-max-paused-share',
  'protection.calmMs': '--hybrid-calm',
  'protection.calmDivergences': '--hybrid-calm-divergences',
};
const replayProtectionFlags: readonly FlagSpec[] = protectionFlags.map((spec) => ({
  ...spec,
  formerly: [formerSpellings[spec.path]],
}));

export function registerReplay(program: Command): void {
  const d = defaultReplayOptions;
  const command = program
    .command('replay')
    .description('replay a primary and a secondary egress capture through the comparison engine on a virtual clock')
    .option('--primary <file>', "the primary VM's egress capture (pcap or pcapng)")
    .option('--secondary <file>', "the secondary VM's egress capture (pcap or pcapng)")
    .option('--pcapng <file>', 'one pcapng holding both sides (with --primary-if and --secondary-if)')
    .option('--primary-if <n>', 'pcapng interface index of the primary')
    .option('--secondary-if <n>', 'pcapng interface index of the secondary')
    .option('--compare-timeout <ms>', 'compare_timeout', String(d.compareTimeoutMs))
    .option('--expired-scan-cycle <ms>', 'expired_scan_cycle', String(d.expiredScanCycleMs))
    .option('--max-queue-size <n>', 'max_queue_size', String(d.maxQueueSize))
    .option('--checkpoint-timer <ms>', 'CHKPOINT_TIMER (0 disables it)', String(d.checkpointTimerMs))
    .option('--checkpoint-duration <ms>', 'simulated checkpoint duration', String(d.checkpointDurationMs))
    .option('--speed <x>', '0 = as fast as possible, 1 = real time', String(d.speed))
    .option('--json <file>', 'write the summary (docs/replay.md) as JSON (- for standard output)')
    .option('--divergences <file>', "write each divergence's two frames to a pcapng")
    .option('--report <file>', 'write a self-contained HTML report')
    .option('--events <file>', 'write an NDJSON log of divergences and checkpoints (- for standard output)')
    .option('--quiet', 'print nothing on success')
    .option('--passthrough <rule>', 'release flows matching RULE uncompared, e.g. udp:5353 (repeatable)', collectRule)
    .option('--guest-busy-share <x>', 'model checkpoint pauses delaying guests busy this share (0..1) of the time')
    .option('--mode-config <file>', 'a YAML file whose `protection` mapping sets the mode and its thresholds');
  declareFlags(command, replayProtectionFlags);
  command.action(async (flags: ReplayFlags) => {
    const summary = await runReplayCommand(flags);
    // Standard output carries the JSON or the events when one of them is `-`: no text summary beside it.
    const stdoutTaken = flags.json === STDOUT_PATH || flags.events === STDOUT_PATH;
    if (!flags.quiet && !stdoutTaken) process.stdout.write(formatSummary(summary));
    for (const e of summary.readErrors) process.stderr.write(`colo-proxy replay: ${e.message}\n`);
    if (summary.readErrors.length > 0) process.exitCode = 1;
  });
}

function number(flag: string, text: string, min: number, integer: boolean): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new ConfigError(flag, `${integer ? 'an integer' : 'a number'} >= ${min}`, text);
  }
  return value;
}

function inputs(flags: ReplayFlags): ReplayFiles {
  if (flags.pcapng !== undefined) {
    if (flags.primary !== undefined || flags.secondary !== undefined) {
      throw new ConfigError('--pcapng', 'either --pcapng or --primary/--secondary, not both', flags.pcapng);
    }
    if (flags.primaryIf === undefined || flags.secondaryIf === undefined) {
      throw new ConfigError(
        '--primary-if/--secondary-if',
        'both interface indexes with --pcapng',
        flags.primaryIf ?? null,
      );
    }
    const files = {
      pcapng: readable('--pcapng', flags.pcapng),
      primaryIf: number('--primary-if', flags.primaryIf, 0, true),
      secondaryIf: number('--secondary-if', flags.secondaryIf, 0, true),
    };
    if (files.primaryIf === files.secondaryIf) {
      throw new ConfigError('--secondary-if', 'an interface other than --primary-if', flags.secondaryIf);
    }
    return files;
  }
  if (flags.primary === undefined || flags.secondary === undefined) {
    throw new ConfigError('--primary/--secondary', 'two capture files (or --pcapng with interfaces)', null);
  }
  return { primary: readable('--primary', flags.primary), secondary: readable('--secondary', flags.secondary) };
}

function readable(flag: string, path: string): string {
  if (!existsSync(path)) throw new ConfigError(flag, 'an existing capture file', path);
  return path;
}

export function replayOptions(flags: ReplayFlags): ReplayOptions {
  return {
    compareTimeoutMs: number('--compare-timeout', flags.compareTimeout, 1, false),
    expiredScanCycleMs: number('--expired-scan-cycle', flags.expiredScanCycle, 1, false),
    maxQueueSize: number('--max-queue-size', flags.maxQueueSize, 1, true),
    checkpointTimerMs: number('--checkpoint-timer', flags.checkpointTimer, 0, false),
    checkpointDurationMs: number('--checkpoint-duration', flags.checkpointDuration, 0, false),
    speed: number('--speed', flags.speed, 0, false),
    passthrough: passthroughFromFlags('--passthrough', flags.passthrough),
    ...modeOptions(flags),
    ...(flags.guestBusyShare === undefined ? {} : { guestBusyShare: busyShare(flags.guestBusyShare) }),
  };
}

function busyShare(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value < 1)) {
    throw new ConfigError('--guest-busy-share', 'a share of time from 0 up to (not including) 1', text);
  }
  return value;
}

/** The protection mode from --mode-config and the mode flags; none of them given: no `modes` in the summary. */
function modeOptions(flags: ReplayFlags): Pick<ReplayOptions, 'modes'> {
  const overrides = flagsToOverrides(replayProtectionFlags, { ...flags }).protection ?? {};
  if (flags.modeConfig === undefined && Object.keys(overrides).length === 0) return {};
  const config = loadProtectionConfig(flags.modeConfig, overrides as Partial<ProtectionConfig>);
  return { modes: { mode: config.mode, thresholds: thresholdsOf(config) } };
}

/** Every output path is checked before anything is read or written; only one output may take stdout. */
function checkOutputs(flags: ReplayFlags): void {
  if (flags.json === STDOUT_PATH && flags.events === STDOUT_PATH) {
    throw new ConfigError('--events', 'a file path when --json is already - (standard output)', flags.events);
  }
  if (flags.json !== undefined) checkOutputPath('--json', flags.json, true);
  if (flags.events !== undefined) checkOutputPath('--events', flags.events, true);
  if (flags.divergences !== undefined) checkOutputPath('--divergences', flags.divergences);
  if (flags.report !== undefined) checkOutputPath('--report', flags.report);
}

/** The event log on standard output: a pass-through, so closing the log never ends stdout itself. */
function openEventLog(path: string): Promise<EventLog> {
  if (path !== STDOUT_PATH) return EventLog.open(path);
  const stream = new PassThrough();
  stream.pipe(process.stdout, { end: false });
  return Promise.resolve(new EventLog(stream));
}

async function runReplayCommand(flags: ReplayFlags): Promise<ReplaySummary> {
  const files = inputs(flags);
  const options = replayOptions(flags);
  checkOutputs(flags);
  checkCaptures(files);
  const recorder = flags.divergences !== undefined ? await DivergenceRecorder.open(flags.divergences) : null;
  const events = flags.events !== undefined ? await openEventLog(flags.events) : null;
  const bar = ProgressBar.forStderr();
  const logger = createLogger();
  // The pcapng and the event log carry capture (epoch) times, as do divergence records everywhere.
  let origin = 0;
  const hooks: ReplayHooks = {
    onStart: (start) => {
      if (start === null) return;
      origin = start.seconds * 1000 + start.nanoseconds / 1e6;
      if (recorder !== null) recorder.clockOrigin = start;
    },
    onDivergence: (d: Divergence) => {
      recorder?.record(d);
      events?.divergence(d, origin);
    },
    onCheckpoint: (c) => {
      events?.checkpoint(origin + c.completedAt, c.reason, 'ok', { total: c.completedAt - c.startedAt });
    },
    onModeSwitch: (change) => {
      const { from, to, reason, divergences, pausedShare } = change;
      logger.info({ at: change.at, from, to, reason, divergences, pausedShare }, 'protection mode switched');
      events?.modeSwitch(origin + change.at, change);
    },
    onJump: (jump) => {
      const { from, to, timersSkipped } = jump;
      logger.info({ from, to, jumpedMs: to - from, timersSkipped }, 'virtual clock jumped over empty time');
    },
    onProgress: bar === null ? undefined : (p) => bar.update(p),
  };
  let summary: ReplaySummary;
  try {
    summary = await replayFiles(files, options, hooks);
  } finally {
    bar?.done();
    logger.flush();
    await recorder?.close();
    await events?.close();
  }
  const json = JSON.stringify(summary, null, 2) + '\n';
  if (flags.json === STDOUT_PATH) process.stdout.write(json);
  else if (flags.json !== undefined) await writeFile(flags.json, json);
  if (flags.report !== undefined) await writeFile(flags.report, renderReport(summary));
  return summary;
}
