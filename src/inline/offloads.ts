import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Offloads on a VM-facing interface break comparison: with TSO/GSO/GRO the capture sees frames larger than
 * the MTU (one side segmented, the other not), and with tx checksum offload it sees unfinished checksums.
 * The proxy refuses to start until they are off, naming the exact command.
 */
export const OFFLOAD_FEATURES = [
  'tx-checksumming',
  'tcp-segmentation-offload',
  'generic-segmentation-offload',
  'generic-receive-offload',
] as const;

export interface OffloadReport {
  iface: string;
  /** Features (from OFFLOAD_FEATURES) that ethtool reports as on. */
  enabled: string[];
  fix: string;
}

/** Parses `ethtool -k IFACE` output; features marked "[fixed]" and off are fine, "on [fixed]" is not fixable. */
export function parseOffloads(iface: string, ethtoolOutput: string): OffloadReport {
  const enabled: string[] = [];
  for (const line of ethtoolOutput.split('\n')) {
    const match = /^([a-z0-9-]+):\s+(on|off)/.exec(line.trim());
    if (!match) continue;
    if ((OFFLOAD_FEATURES as readonly string[]).includes(match[1]) && match[2] === 'on') enabled.push(match[1]);
  }
  return { iface, enabled, fix: `ethtool -K ${iface} tx off tso off gso off gro off` };
}

export class OffloadError extends Error {
  readonly code = 'COLO_OFFLOADS_ON';
  constructor(readonly reports: OffloadReport[]) {
    super(
      reports.map((r) => `interface ${r.iface} has offloads on (${r.enabled.join(', ')}); fix: ${r.fix}`).join('\n'),
    );
    this.name = 'OffloadError';
  }
}

/** Throws OffloadError naming every interface with offloads on; an interface ethtool cannot read is an error too. */
export async function checkOffloads(ifaces: string[], ethtool = 'ethtool'): Promise<void> {
  const bad: OffloadReport[] = [];
  for (const iface of ifaces) {
    let output: string;
    try {
      ({ stdout: output } = await run(ethtool, ['-k', iface]));
    } catch (err) {
      throw new Error(`cannot read offloads of ${iface} with "${ethtool} -k ${iface}": ${(err as Error).message}`);
    }
    const report = parseOffloads(iface, output);
    if (report.enabled.length > 0) bad.push(report);
  }
  if (bad.length > 0) throw new OffloadError(bad);
}
