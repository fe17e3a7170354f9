import { statSync } from 'node:fs';
import { CompareEngine } from '../../compare/engine.js';
import { isReplayableLinkType } from '../capture/cooked.js';
import { openCaptureFile } from '../capture/open.js';
import { ConfigError } from '../config/errors.js';
import type { CaptureReader } from '../capture/record.js';
import { defaultReplayOptions, type ReplayOptions } from './options.js';
import { replay, type ReplayHooks, type ReplaySource } from './replay.js';
import type { ReplaySummary } from './summary.js';

/** Two capture files, or one pcapng and the interfaces of each side. */
export type ReplayFiles =
  | { primary: string; secondary: string; chunkSize?: number }
  | { pcapng: string; primaryIf: number; secondaryIf: number; chunkSize?: number };

/** A capture that cannot be replayed at all: a usage error (exit 2) naming the flag and the file's problem. */
export class CaptureCheckError extends ConfigError {
  constructor(flag: string, file: string, problem: string) {
    super(flag, 'a readable pcap or pcapng capture', file);
    this.message = `${flag}: ${problem}`;
    this.name = 'CaptureCheckError';
  }
}

/**
 * Opens each capture and reads its header and first record, so a file that is missing, unreadable, not
 * a capture or of a link type the replay cannot read fails before either side is replayed (replaying the
 * good side alone would invent timeouts and checkpoints). Content that goes bad later is a read error in
 * the summary instead. An empty capture (a header, no records) passes: it replays as nothing.
 */
export function checkCaptures(files: ReplayFiles): void {
  if ('pcapng' in files) {
    checkCapture('--pcapng', files.pcapng, [files.primaryIf, files.secondaryIf]);
  } else {
    checkCapture('--primary', files.primary, []);
    checkCapture('--secondary', files.secondary, []);
  }
}

function checkCapture(flag: string, file: string, interfaces: readonly number[]): void {
  let reader: CaptureReader;
  try {
    reader = openCaptureFile(file);
  } catch (err) {
    throw new CaptureCheckError(flag, file, (err as Error).message);
  }
  try {
    reader.next();
    if (reader.error !== null) throw new CaptureCheckError(flag, file, reader.error.message);
    if (flag === '--pcapng' && reader.format !== 'pcapng') {
      throw new ConfigError(flag, 'a pcapng file (for two pcap files use --primary and --secondary)', file);
    }
    for (const index of interfaces) {
      const linkType = reader.interfaces[index]?.linkType;
      if (linkType !== undefined && !isReplayableLinkType(linkType)) {
        const problem = `${file}: interface ${index} has link type ${linkType} (only 1, Ethernet, and 113/276, Linux cooked, are supported)`;
        throw new CaptureCheckError(flag, file, problem);
      }
    }
  } finally {
    reader.close();
  }
}

/**
 * Checks the captures (checkCaptures), builds a CompareEngine with the replay's settings and replays.
 * A capture that fails the check throws CaptureCheckError; content that goes bad later is reported in
 * the summary's readErrors.
 */
export async function replayFiles(
  files: ReplayFiles,
  options: Partial<ReplayOptions> = {},
  hooks: ReplayHooks = {},
): Promise<ReplaySummary> {
  const settings: ReplayOptions = { ...defaultReplayOptions, ...options };
  checkCaptures(files);
  const [primary, secondary] = openSources(files);
  try {
    const engine = new CompareEngine({
      compareTimeoutMs: settings.compareTimeoutMs,
      expiredScanCycleMs: settings.expiredScanCycleMs,
      maxQueueSize: settings.maxQueueSize,
      passthrough: settings.passthrough ?? [],
    });
    const summary = await replay(primary, secondary, engine, settings, hooks);
    const stats = engine.stats();
    summary.passthrough = {
      rules: engine.passthroughRules(),
      releasedPrimary: stats.passedThroughRulePrimary,
      droppedSecondary: stats.passedThroughRuleSecondary,
    };
    if ('pcapng' in files) {
      checkInterface('--primary-if', primary);
      checkInterface('--secondary-if', secondary);
    }
    return summary;
  } finally {
    primary.reader.close();
    secondary.reader.close();
  }
}

/** A pcapng interface index the file never declared would silently replay nothing: say so instead. */
function checkInterface(flag: string, source: ReplaySource): void {
  const reader = source.reader;
  if (reader.error !== null) return;
  if (reader.format !== 'pcapng') {
    throw new ConfigError('--pcapng', 'a pcapng file (for two pcap files use --primary and --secondary)', reader.file);
  }
  if (source.interface !== null && source.interface >= reader.interfaces.length) {
    throw new ConfigError(
      flag,
      `an interface index below ${reader.interfaces.length} (${reader.file})`,
      source.interface,
    );
  }
}

function openSources(files: ReplayFiles): [ReplaySource, ReplaySource] {
  const chunkSize = files.chunkSize;
  if ('pcapng' in files) {
    const size = statSync(files.pcapng).size;
    const p = openCaptureFile(files.pcapng, { interfaceFilter: files.primaryIf, chunkSize });
    const s = openAfter(p, () => openCaptureFile(files.pcapng, { interfaceFilter: files.secondaryIf, chunkSize }));
    return [
      { reader: p, interface: files.primaryIf, size },
      { reader: s, interface: files.secondaryIf, size },
    ];
  }
  const p = openCaptureFile(files.primary, { chunkSize });
  const s = openAfter(p, () => openCaptureFile(files.secondary, { chunkSize }));
  return [
    { reader: p, interface: null, size: statSync(files.primary).size },
    { reader: s, interface: null, size: statSync(files.secondary).size },
  ];
}

/** Opens the second reader, closing the first if that throws. */
function openAfter(first: CaptureReader, open: () => CaptureReader): CaptureReader {
  try {
    return open();
  } catch (err) {
    first.close();
    throw err;
  }
}
