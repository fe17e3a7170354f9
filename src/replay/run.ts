import { statSync } from 'node:fs';
import { CompareEngine } from '../../compare/engine.js';
import { openCaptureFile } from '../capture/open.js';
import { ConfigError } from '../config/errors.js';
import type { CaptureReader } from '../capture/record.js';
import { defaultReplayOptions, replay, type ReplayHooks, type ReplayOptions, type ReplaySource } from './replay.js';
import type { ReplaySummary } from './summary.js';

/** Two capture files, or one pcapng and the interfaces of each side. */
export type ReplayFiles =
  | { primary: string; secondary: string; chunkSize?: number }
  | { pcapng: string; primaryIf: number; secondaryIf: number; chunkSize?: number };

/**
 * Opens the captures, builds a CompareEngine with the replay's settings and replays. Missing or
 * unreadable files throw (startup edge); bad content is reported in the summary's readErrors.
 */
export async function replayFiles(
  files: ReplayFiles,
  options: Partial<ReplayOptions> = {},
  hooks: ReplayHooks = {},
): Promise<ReplaySummary> {
  const settings: ReplayOptions = { ...defaultReplayOptions, ...options };
  const [primary, secondary] = openSources(files);
  try {
    const engine = new CompareEngine({
      compareTimeoutMs: settings.compareTimeoutMs,
      expiredScanCycleMs: settings.expiredScanCycleMs,
      maxQueueSize: settings.maxQueueSize,
    });
    const summary = await replay(primary, secondary, engine, settings, hooks);
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
