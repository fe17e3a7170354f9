import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { ExecDriver } from '../../src/checkpoint/drivers/exec.js';
import { createDriver } from '../../src/checkpoint/drivers/index.js';
import { LabDriver } from '../../src/checkpoint/drivers/lab.js';
import {
  checkpointConfigSchema,
  checkpointEndpoint,
  checkpointSecurity,
  loadCheckpointConfig,
  parseSize,
} from '../../src/config/checkpoint.js';
import { checkpointFlags } from '../../src/config/checkpoint-flags.js';
import { declareFlags, loadConfig } from '../../src/config/load.js';
import { configError, configFiles } from '../support/config-files.js';

const yaml = configFiles('colo-ckpt-config-').write;

const SECONDARY = `
endpoint: listen:127.0.0.1:9000
tls: { ca: ca.pem, cert: s.pem, key: s.key }
checkpointTimerMs: 20000
timeouts: { waitMs: 2000 }
driver:
  kind: exec
  suspend: virsh suspend vm
  load: load-vm
  resume: virsh resume vm
  timeouts: { loadMs: 90000 }
`;

describe('checkpoint config', () => {
  it('reads a full secondary config and fills every default', () => {
    const config = loadCheckpointConfig(yaml(SECONDARY), {}, 'secondary');
    expect(config).toEqual({
      endpoint: 'listen:127.0.0.1:9000',
      plaintext: false,
      tls: { ca: 'ca.pem', cert: 's.pem', key: 's.key' },
      checkpointTimerMs: 20000,
      maxStateBytes: 2 ** 30,
      timeouts: {
        waitMs: 2000,
        transferMs: 60000,
        loadMs: 30000,
        connectMs: 3000,
        handshakeMs: 10000,
        retryMs: 100,
        maxRetryMs: 2000,
        heartbeatIntervalMs: 500,
        heartbeatLossMs: 3000,
      },
      driver: {
        kind: 'exec',
        suspend: 'virsh suspend vm',
        load: 'load-vm',
        resume: 'virsh resume vm',
        timeouts: { suspendMs: 10000, saveMs: 60000, loadMs: 90000, resumeMs: 10000 },
      },
    });
  });

  it('starts from flags alone, as in `colo-proxy secondary --listen ... --plaintext`', () => {
    const config = loadCheckpointConfig(
      undefined,
      { listen: '127.0.0.1:7000', driverSuspend: 's', driverLoad: 'l', driverResume: 'r', plaintext: true },
      'secondary',
    );
    expect(config.endpoint).toBe('listen:127.0.0.1:7000');
    expect(config.plaintext).toBe(true);
    expect(config.checkpointTimerMs).toBe(10000);
    expect(config.driver).toMatchObject({ kind: 'exec', suspend: 's', load: 'l', resume: 'r' });
  });

  it('the dialling back-off comes from timeouts.retryMs and maxRetryMs, or --retry-ms and --max-retry-ms', () => {
    const base = { connect: '127.0.0.1:7000', plaintext: true, driverSuspend: 's', driverSave: 'v', driverResume: 'r' };
    const fromFlags = loadCheckpointConfig(undefined, { ...base, retryMs: '20', maxRetryMs: '500' }, 'primary');
    expect(fromFlags.timeouts).toMatchObject({ retryMs: 20, maxRetryMs: 500 });
    const fromFile = loadCheckpointConfig(yaml(`${SECONDARY}\n`.replace('{ waitMs: 2000 }', '{ retryMs: 50 }')), {});
    expect(fromFile.timeouts).toMatchObject({ retryMs: 50, maxRetryMs: 2000 });
    const inverted = configError(() => loadCheckpointConfig(undefined, { ...base, retryMs: '3000' }, 'primary'));
    expect(inverted.message).toContain('timeouts.maxRetryMs');
    expect(inverted.message).toContain('at least timeouts.retryMs (3000)');
  });

  it('flags override file values', () => {
    const config = loadCheckpointConfig(yaml(SECONDARY), {
      connect: 'connect:10.0.0.2:9100',
      waitMs: '250',
      driverLoadMs: '1000',
      driverLoad: 'other-load',
      maxStateBytes: '64MiB',
    });
    expect(config.endpoint).toBe('connect:10.0.0.2:9100');
    expect(config.timeouts.waitMs).toBe(250);
    expect(config.maxStateBytes).toBe(64 * 2 ** 20);
    expect(config.driver).toMatchObject({ kind: 'exec', load: 'other-load', suspend: 'virsh suspend vm' });
    expect(config.driver.timeouts.loadMs).toBe(1000);
  });

  it('a flag choosing another driver kind replaces the file driver; --plaintext replaces the file tls', () => {
    const config = loadCheckpointConfig(yaml(SECONDARY), { driverControl: '/run/guest.sock', plaintext: true });
    expect(config.driver).toEqual({
      kind: 'lab',
      control: '/run/guest.sock',
      timeouts: { suspendMs: 5000, saveMs: 30000, loadMs: 30000, resumeMs: 5000 },
    });
    expect(config.plaintext).toBe(true);
    expect(config.tls).toBeUndefined();
  });

  it('names the field for bad input, file or flag', () => {
    const cases: Array<[string | undefined, Record<string, unknown>, string, RegExp]> = [
      [
        yaml('endpoint: 42\nplaintext: true\ndriver: { kind: lab, control: x }'),
        {},
        'endpoint',
        /expected listen:HOST:PORT/,
      ],
      [
        undefined,
        { listen: '127.0.0.1:99999', plaintext: true, driverControl: 'x' },
        'endpoint',
        /got "listen:127\.0\.0\.1:99999"/,
      ],
      [
        yaml(SECONDARY.replace('suspend: virsh suspend vm', 'suspend: 42')),
        {},
        'driver.suspend',
        /expected a shell command string \(the suspend hook\), got 42/,
      ],
      [
        yaml(SECONDARY.replace('kind: exec', 'kind: libvirt')),
        {},
        'driver.kind',
        /"exec", "lab" or "qemu", got "libvirt"/,
      ],
      [
        yaml(SECONDARY.replace('waitMs: 2000', 'waitMs: -5')),
        {},
        'timeouts.waitMs',
        /in milliseconds \(a positive integer\), got -5/,
      ],
      [yaml(SECONDARY), { heartbeatLossMs: 'soon' }, 'timeouts.heartbeatLossMs', /got "soon"/],
      [yaml(SECONDARY), { maxStateBytes: 'lots' }, 'maxStateBytes', /"64MiB"/],
      [
        yaml(SECONDARY.replace('kind: exec', 'kind: exec\n  suspnd: typo')),
        {},
        'driver.suspnd',
        /unknown \(known fields here: kind, suspend, save, load, resume, timeouts\)/,
      ],
      [yaml(`${SECONDARY}\nheartbeat: 5`), {}, 'heartbeat', /unknown/],
      [yaml(SECONDARY.replace('tls: { ca: ca.pem, cert: s.pem, key: s.key }', '')), {}, 'tls', /or plaintext: true/],
      [yaml(`${SECONDARY}\nplaintext: true`), {}, 'plaintext', /not both/],
      [
        yaml(SECONDARY.replace('waitMs: 2000', 'heartbeatIntervalMs: 9000')),
        {},
        'timeouts.heartbeatLossMs',
        /more than timeouts\.heartbeatIntervalMs/,
      ],
      [
        undefined,
        { listen: '127.0.0.1:1', plaintext: true, driverKind: 'lab', driverControl: 'tcp:nohost' },
        'driver.control',
        /tcp:HOST:PORT/,
      ],
    ];
    for (const [file, flags, field, message] of cases) {
      const err = configError(() => loadCheckpointConfig(file, flags));
      expect({ field: err.field, message: err.message }).toEqual({ field, message: expect.stringMatching(message) });
    }
  });

  it('checks the hooks each role needs: the primary saves, the secondary loads', () => {
    const flags = { listen: '127.0.0.1:7000', plaintext: true, driverSuspend: 's', driverResume: 'r' };
    const primary = configError(() => loadCheckpointConfig(undefined, { ...flags, driverLoad: 'l' }, 'primary'));
    expect(primary.message).toBe(
      'config field "driver.save": expected a shell command string (the primary runs the save hook), got undefined',
    );
    const secondary = configError(() => loadCheckpointConfig(undefined, { ...flags, driverSave: 'v' }, 'secondary'));
    expect(secondary.field).toBe('driver.load');
    expect(loadCheckpointConfig(undefined, { ...flags, driverSave: 'v' }, 'primary').driver.kind).toBe('exec');
  });

  it('hands the protocol its endpoint and security, and reads sizes', () => {
    const secondary = loadCheckpointConfig(yaml(SECONDARY), {});
    expect(checkpointEndpoint(secondary)).toEqual({ mode: 'listen', kind: 'tcp', host: '127.0.0.1', port: 9000 });
    expect(checkpointSecurity(secondary)).toEqual({ kind: 'tls', ca: 'ca.pem', cert: 's.pem', key: 's.key' });
    const plain = loadCheckpointConfig(undefined, {
      connect: 'unix:/run/colo.sock',
      plaintext: true,
      driverControl: 'g.sock',
    });
    expect(checkpointEndpoint(plain)).toEqual({ mode: 'connect', kind: 'unix', path: '/run/colo.sock' });
    expect(checkpointSecurity(plain)).toEqual({ kind: 'plaintext' });
    expect(parseSize('1GiB')).toBe(2 ** 30);
    expect(parseSize('1.5 KB')).toBe(1500);
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize(-1)).toBeNull();
    expect(parseSize('1 TB')).toBeNull();
  });

  it('every flag is declarable with commander and lands on a field the schema knows', () => {
    const command = declareFlags(new Command('secondary').exitOverride(), checkpointFlags);
    command.parse(
      [
        '--listen',
        'unix:/tmp/x.sock',
        '--plaintext',
        '--driver-control',
        'tcp:127.0.0.1:7001',
        '--heartbeat-interval-ms',
        '200',
        '--heartbeat-loss-ms',
        '900',
        '--handshake-ms',
        '2500',
        '--driver-resume-ms',
        '77',
      ],
      { from: 'user' },
    );
    const config = loadCheckpointConfig(undefined, command.opts());
    expect(config.endpoint).toBe('listen:unix:/tmp/x.sock');
    expect(config.timeouts).toMatchObject({ heartbeatIntervalMs: 200, heartbeatLossMs: 900, handshakeMs: 2500 });
    expect(config.driver).toMatchObject({ kind: 'lab', control: 'tcp:127.0.0.1:7001' });
    expect(config.driver.timeouts.resumeMs).toBe(77);
  });

  it('each flag is its field path in kebab-case without the timeouts group (docs/configuration.md)', () => {
    const kebab = (path: string): string =>
      '--' +
      path
        .split('.')
        .filter((key) => key !== 'timeouts')
        .join('-')
        .replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    for (const spec of checkpointFlags) {
      if (spec.path === 'endpoint') continue; // --listen and --connect carry the mode as well
      expect(spec.flag.split(' ')[0], spec.path).toBe(kebab(spec.path));
    }
    expect(checkpointFlags.map((spec) => spec.path)).not.toContain('checkpointTimerMs');
  });

  it('an old flag spelling still works, with a deprecation warning naming the new one', () => {
    const command = declareFlags(new Command('secondary').exitOverride(), checkpointFlags);
    const old = ['--lab-control', 'g.sock', '--heartbeat-timeout', '900', '--load-wait-timeout', '400'];
    command.parse(['--listen', '127.0.0.1:7000', '--plaintext', ...old], { from: 'user' });
    const warnings: string[] = [];
    const config = loadConfig(checkpointConfigSchema, {
      flags: command.opts(),
      flagSpecs: checkpointFlags,
      warn: (message) => warnings.push(message),
    });
    expect(config.timeouts).toMatchObject({ heartbeatLossMs: 900, loadMs: 400 });
    expect(config.driver).toMatchObject({ kind: 'lab', control: 'g.sock' });
    expect(warnings.sort()).toEqual([
      '--heartbeat-timeout is deprecated: use --heartbeat-loss-ms',
      '--lab-control is deprecated: use --driver-control',
      '--load-wait-timeout is deprecated: use --load-ms',
    ]);
    expect(command.helpInformation()).not.toContain('--heartbeat-timeout');
  });

  it('createDriver builds the configured driver', async () => {
    const exec = loadCheckpointConfig(yaml(SECONDARY), {});
    const driver = createDriver(exec.driver, 'secondary');
    expect(driver).toBeInstanceOf(ExecDriver);
    expect((driver as ExecDriver).hooks).toEqual({
      suspend: 'virsh suspend vm',
      save: undefined,
      load: 'load-vm',
      resume: 'virsh resume vm',
    });
    const lab = createDriver(
      { kind: 'lab', control: '/tmp/none.sock', timeouts: { suspendMs: 1, saveMs: 1, loadMs: 1, resumeMs: 1 } },
      'primary',
    );
    expect(lab).toBeInstanceOf(LabDriver);
    expect(lab.kind).toBe('lab');
    await lab.close?.();
  });
});
