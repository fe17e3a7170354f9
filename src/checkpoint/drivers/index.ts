import type { CheckpointConfig, DriverConfig, Role } from '../../config/checkpoint.js';
import { checkpointSecurity } from '../../config/checkpoint.js';
import type { Logger } from '../../log.js';
import type { VmDriver } from '../driver.js';
import { loadControlSecurity, type TlsMaterial } from '../tls.js';
import { ExecDriver } from './exec.js';
import { LabDriver } from './lab.js';
import { QemuPrimaryDriver } from './qemu-primary.js';
import { QemuSecondaryDriver } from './qemu-secondary.js';

/**
 * From configuration to the VM driver a role runs. The role matters for the qemu driver only: the
 * primary's reaches an operator-started VM through QMP, the secondary's starts and replaces QEMU processes.
 * The config's role check (checkDriverForRole) has made sure the fields each role needs are there.
 */

export interface CreateDriverOptions {
  maxStateBytes?: number;
  logger?: Logger;
}

export function createDriver(driver: DriverConfig, role: Role, options: CreateDriverOptions = {}): VmDriver {
  if (driver.kind === 'exec') {
    const { suspend, save, load, resume } = driver;
    return new ExecDriver({ suspend, save, load, resume }, driver.timeouts, options);
  }
  if (driver.kind === 'lab') return new LabDriver(driver.control, driver.timeouts, options);
  const migration = { maxBandwidth: driver.maxBandwidth, downtimeLimitMs: driver.downtimeLimitMs };
  const workDir = driver.workDir;
  if (role === 'primary') {
    if (driver.qmp === undefined) throw new Error('qemu driver (primary): driver.qmp is not set');
    return new QemuPrimaryDriver({
      qmp: driver.qmp,
      workDir,
      migration,
      timeouts: driver.timeouts,
      ...(driver.precopy ? { precopy: driver.precopy } : {}),
      ...options,
    });
  }
  if (driver.command === undefined || driver.taps === undefined) {
    throw new Error('qemu driver (secondary): driver.command and driver.taps must be set');
  }
  return new QemuSecondaryDriver({
    command: driver.command,
    taps: driver.taps,
    workDir,
    migration,
    timeouts: driver.timeouts,
    ...(driver.incoming !== undefined ? { incoming: driver.incoming } : {}),
    logger: options.logger,
  });
}

/**
 * What either role needs before it can speak the protocol: the control channel's TLS material (null for
 * plaintext, which loadControlSecurity warns about) and the VM driver for that role. Used by `secondary`,
 * `checkpoint` and `run`, so the three start the same way.
 */
export async function prepareCheckpointRole(
  config: CheckpointConfig,
  role: Role,
  logger: Logger,
): Promise<{ material: TlsMaterial | null; driver: VmDriver }> {
  const material = await loadControlSecurity(checkpointSecurity(config), logger);
  const driver = createDriver(config.driver, role, { maxStateBytes: config.maxStateBytes, logger });
  return { material, driver };
}
