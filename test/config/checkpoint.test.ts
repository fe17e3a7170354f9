import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecDriver } from '../../src/checkpoint/drivers/exec.js';
import { LabDriver } from '../../src/checkpoint/drivers/lab.js';
import {
  checkpointEndpoint,
  checkpointFlags,
  checkpointSecurity,
  createDriver,
  loadCheckpointConfig,
  parseSize,
} from '../../src/config/checkpoint.js';
import { ConfigError } from '../../src/config/errors.js';
import { declareFlags } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-ckpt-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function yaml(text: string): string {
  const path = join(dir, `c${files++}.yaml`);
  writeFileSync(path, text);
  return path;
}

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

function error(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

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
      { listen: '127.0.0.1:7000', execSuspend: 's', execLoad: 'l', execResume: 'r', plaintext: true },
      'secondary',
    );
    expect(config.endpoint).toBe('listen:127.0.0.1:7000');
    expect(config.plaintext).toBe(true);
    expect(config.checkpointTimerMs).toBe(10000);
    expect(config.driver).toMatchObject({ kind: 'exec', suspend: 's', load: 'l', resume: 'r' });
  });

  it('flags override file values', () => {
    const config = loadCheckpointConfig(yaml(SECONDARY), {
      connect: 'connect:10.0.0.2:9100',
      checkpointTimer: '500',
      waitTimeout: '250',
      loadTimeout: '1000',
      execLoad: 'other-load',
      maxStateSize: '64MiB',
    });
    expect(config.endpoint).toBe('connect:10.0.0.2:9100');
    expect(config.checkpointTimerMs).toBe(500);
    expect(config.timeouts.waitMs).toBe(250);
    expect(config.maxStateBytes).toBe(64 * 2 ** 20);
    expect(config.driver).toMatchObject({ kind: 'exec', load: 'other-load', suspend: 'virsh suspend vm' });
    expect(config.driver.timeouts.loadMs).toBe(1000);
  });

  it('a flag choosing another driver kind replaces the file driver; --plaintext replaces the file tls', () => {
    const config = loadCheckpointConfig(yaml(SECONDARY), { labControl: '/run/guest.sock', plaintext: true });
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
        { listen: '127.0.0.1:99999', plaintext: true, labControl: 'x' },
        'endpoint',
        /got "listen:127\.0\.0\.1:99999"/,
      ],
      [
        yaml(SECONDARY.replace('suspend: virsh suspend vm', 'suspend: 42')),
        {},
        'driver.suspend',
        /expected a shell command string \(the suspend hook\), got 42/,
      ],
      [yaml(SECONDARY.replace('kind: exec', 'kind: qemu')), {}, 'driver.kind', /"exec" or "lab", got "qemu"/],
      [
        yaml(SECONDARY.replace('waitMs: 2000', 'waitMs: -5')),
        {},
        'timeouts.waitMs',
        /in milliseconds \(a positive integer\), got -5/,
      ],
      [yaml(SECONDARY), { checkpointTimer: 'soon' }, 'checkpointTimerMs', /got "soon"/],
      [yaml(SECONDARY), { maxStateSize: 'lots' }, 'maxStateBytes', /"64MiB"/],
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
        { listen: '127.0.0.1:1', plaintext: true, driver: 'lab', labControl: 'tcp:nohost' },
        'driver.control',
        /tcp:HOST:PORT/,
      ],
    ];
    for (const [file, flags, field, message] of cases) {
      const err = error(() => loadCheckpointConfig(file, flags));
      expect({ field: err.field, message: err.message }).toEqual({ field, message: expect.stringMatching(message) });
    }
  });

  it('checks the hooks each role needs: the primary saves, the secondary loads', () => {
    const flags = { listen: '127.0.0.1:7000', plaintext: true, execSuspend: 's', execResume: 'r' };
    const primary = error(() => loadCheckpointConfig(undefined, { ...flags, execLoad: 'l' }, 'primary'));
    expect(primary.message).toBe(
      'config field "driver.save": expected a shell command string (the primary runs the save hook), got undefined',
    );
    const secondary = error(() => loadCheckpointConfig(undefined, { ...flags, execSave: 'v' }, 'secondary'));
    expect(secondary.field).toBe('driver.load');
    expect(loadCheckpointConfig(undefined, { ...flags, execSave: 'v' }, 'primary').driver.kind).toBe('exec');
  });

  it('hands the protocol its endpoint and security, and reads sizes', () => {
    const secondary = loadCheckpointConfig(yaml(SECONDARY), {});
    expect(checkpointEndpoint(secondary)).toEqual({ mode: 'listen', kind: 'tcp', host: '127.0.0.1', port: 9000 });
    expect(checkpointSecurity(secondary)).toEqual({ kind: 'tls', ca: 'ca.pem', cert: 's.pem', key: 's.key' });
    const plain = loadCheckpointConfig(undefined, {
      connect: 'unix:/run/colo.sock',
      plaintext: true,
      labControl: 'g.sock',
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
        '--lab-control',
        'tcp:127.0.0.1:7001',
        '--heartbeat-interval',
        '200',
        '--heartbeat-timeout',
        '900',
        '--resume-timeout',
        '77',
      ],
      { from: 'user' },
    );
    const config = loadCheckpointConfig(undefined, command.opts());
    expect(config.endpoint).toBe('listen:unix:/tmp/x.sock');
    expect(config.timeouts).toMatchObject({ heartbeatIntervalMs: 200, heartbeatLossMs: 900 });
    expect(config.driver).toMatchObject({ kind: 'lab', control: 'tcp:127.0.0.1:7001' });
    expect(config.driver.timeouts.resumeMs).toBe(77);
  });

  it('createDriver builds the configured driver', async () => {
    const exec = loadCheckpointConfig(yaml(SECONDARY), {});
    const driver = createDriver(exec.driver);
    expect(driver).toBeInstanceOf(ExecDriver);
    expect((driver as ExecDriver).hooks).toEqual({
      suspend: 'virsh suspend vm',
      save: undefined,
      load: 'load-vm',
      resume: 'virsh resume vm',
    });
    const lab = createDriver({
      kind: 'lab',
      control: '/tmp/none.sock',
      timeouts: { suspendMs: 1, saveMs: 1, loadMs: 1, resumeMs: 1 },
    });
    expect(lab).toBeInstanceOf(LabDriver);
    expect(lab.kind).toBe('lab');
    await lab.close?.();
  });
});
