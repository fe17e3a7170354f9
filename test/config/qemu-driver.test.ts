import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDriver } from '../../src/checkpoint/drivers/index.js';
import { QemuPrimaryDriver } from '../../src/checkpoint/drivers/qemu-primary.js';
import { QemuSecondaryDriver } from '../../src/checkpoint/drivers/qemu-secondary.js';
import { loadCheckpointConfig, type Role } from '../../src/config/checkpoint.js';
import { configError, configFiles } from '../support/config-files.js';

const configs = configFiles('colo-qemu-config-');
function load(text: string, role: Role) {
  return loadCheckpointConfig(configs.write(text), {}, role);
}

/** A YAML example of docs/configuration.md's qemu driver section, found by its first line. */
function docExample(firstLine: string): string {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([^]*?)```/g)].map((match) => match[1]);
  const block = blocks.find((text) => text.startsWith(firstLine));
  if (block === undefined) throw new Error(`docs/configuration.md has no yaml example starting with ${firstLine}`);
  return block;
}

const PRIMARY = docExample('# primary.yaml');
const SECONDARY = docExample('# secondary.yaml (colo-proxy secondary)');

const SECONDARY_ONE_TAP = `
endpoint: connect:192.0.2.1:9000
plaintext: true
driver:
  kind: qemu
  command: [qemu-system-x86_64, -M, pc, -m, "128", -netdev, "tap,id=n0,ifname={tap},script=no,downscript=no",
            -device, "virtio-net-pci,netdev=n0"]
  taps: [colo-s0]
`;

describe('qemu driver config', () => {
  it('reads the primary example and fills the defaults', () => {
    const config = load(PRIMARY, 'primary');
    expect(config.driver).toEqual({
      kind: 'qemu',
      qmp: '/run/colo-vm/primary.qmp',
      workDir: '/run/colo-proxy/qemu',
      maxBandwidth: 20e9,
      downtimeLimitMs: 0,
      precopy: { uri: 'tcp:192.0.2.2:4444', maxMs: 3000, stopAtRemainingBytes: 4 * 2 ** 20 },
      timeouts: { suspendMs: 10_000, saveMs: 60_000, loadMs: 60_000, resumeMs: 10_000 },
    });
    expect(createDriver(config.driver, 'primary')).toBeInstanceOf(QemuPrimaryDriver);
  });

  it('reads the secondary examples, with two taps and with one', () => {
    const two = load(SECONDARY, 'secondary');
    expect(two.driver).toMatchObject({ kind: 'qemu', taps: ['colo-s0', 'colo-s1'], incoming: 'tcp:0.0.0.0:4444' });
    expect(createDriver(two.driver, 'secondary')).toBeInstanceOf(QemuSecondaryDriver);
    const one = load(SECONDARY_ONE_TAP, 'secondary');
    expect(one.driver).toMatchObject({ kind: 'qemu', taps: ['colo-s0'] });
  });

  it('reads sizes and a work directory', () => {
    const config = load(
      PRIMARY.replace('  precopy:', '  maxBandwidth: 1GiB\n  workDir: /tmp/q\n  precopy:'),
      'primary',
    );
    expect(config.driver).toMatchObject({ maxBandwidth: 2 ** 30, workDir: '/tmp/q' });
  });

  it('names the field each role is missing', () => {
    expect(configError(() => load(PRIMARY.replace('  qmp: /run/colo-vm/primary.qmp\n', ''), 'primary')).field).toBe(
      'driver.qmp',
    );
    expect(configError(() => load(SECONDARY.replace(/ {2}command:[^]*?"\]\n/, ''), 'secondary')).field).toBe(
      'driver.command',
    );
    expect(configError(() => load(SECONDARY.replace('  taps: [colo-s0, colo-s1]\n', ''), 'secondary')).field).toBe(
      'driver.taps',
    );
  });

  it('names a field that belongs to the other role', () => {
    const primaryWithTaps = configError(() => load(`${PRIMARY}  taps: [t0]\n`, 'primary'));
    expect(primaryWithTaps.field).toBe('driver.taps');
    expect(primaryWithTaps.message).toContain('no taps on the primary');
    expect(
      configError(() =>
        load(SECONDARY.replace('  incoming:', '  precopy: { uri: "unix:/x" }\n  incoming:'), 'secondary'),
      ).field,
    ).toBe('driver.precopy');
  });

  it('needs two taps for a pre-copy incoming address', () => {
    const err = configError(() => load(`${SECONDARY_ONE_TAP}  incoming: tcp:0.0.0.0:4444\n`, 'secondary'));
    expect(err.field).toBe('driver.taps');
    expect(err.message).toContain('two tap names when driver.incoming is set');
  });

  it('rejects a command without {tap}, a bad migration address and three taps', () => {
    const noTap = configError(() => load(SECONDARY.replace('ifname={tap}', 'ifname=fixed'), 'secondary'));
    expect(noTap.message).toContain('driver.command');
    expect(noTap.message).toContain('{tap}');
    const badUri = configError(() => load(SECONDARY.replace('tcp:0.0.0.0:4444', 'exec:cat'), 'secondary'));
    expect(badUri.message).toContain('driver.incoming');
    expect(badUri.message).toContain('tcp:HOST:PORT or unix:PATH');
    const threeTaps = configError(() => load(SECONDARY.replace('[colo-s0, colo-s1]', '[a, b, c]'), 'secondary'));
    expect(threeTaps.message).toContain('driver.taps');
  });
});
