import { describe, expect, it } from 'vitest';
import { loadInlineConfig } from '../../src/config/inline.js';
import { configError, configFiles, minimalInlineYaml as minimal } from '../support/config-files.js';

const configs = configFiles('colo-inline-config-');
const load = (yaml: string) => loadInlineConfig(configs.write(yaml));
const errorOf = (yaml: string) => configError(() => load(yaml));

describe('inline config (colo-proxy run --config)', () => {
  it('fills every default from a minimal file', () => {
    const config = load(minimal);
    expect(config.interfaces).toEqual({ client: 'xcli', primary: 'xpri', secondary: 'xsec' });
    expect(config.checkpoint.checkpointTimerMs).toBe(10_000);
    expect(config.compare).toEqual({
      compareTimeoutMs: 3000,
      expiredScanCycleMs: 1000,
      maxQueueSize: 1024,
      maxConnections: 16384,
    });
    expect(config.rewriter.resetOffsetsOnCheckpoint).toBe(true);
    expect(config.gate.maxHeldFrames).toBe(65536);
    expect(config.mirror.maxHeldIngress).toBe(16384);
    expect(config.captureBufferFrames).toBe(1024);
    expect(config.mtu).toBe(1500);
    expect(config.offloadCheck).toBe(true);
    expect(config.primaryHealth).toEqual({ kind: 'none' });
    expect(config.metrics).toBeUndefined();
  });

  it('accepts every optional section', () => {
    const config = load(`${minimal}
compare: { compareTimeoutMs: 500, maxQueueSize: 64 }
rewriter: { resetOffsetsOnCheckpoint: false }
gate: { maxHeldFrames: 100 }
mirror: { maxHeldIngress: 50 }
captureBufferFrames: 512
mtu: 9000
offloadCheck: false
metrics: 127.0.0.1:9464
events: /tmp/events.ndjson
divergences: /tmp/div.pcapng
primaryHealth: { kind: lab, control: unix:/run/colo/primary.sock, intervalMs: 100, failures: 2 }
`);
    expect(config.compare.compareTimeoutMs).toBe(500);
    expect(config.compare.expiredScanCycleMs).toBe(1000);
    expect(config.rewriter.resetOffsetsOnCheckpoint).toBe(false);
    expect(config.mtu).toBe(9000);
    expect(config.primaryHealth).toEqual({
      kind: 'lab',
      control: 'unix:/run/colo/primary.sock',
      intervalMs: 100,
      failures: 2,
      timeoutMs: 1000,
    });
  });

  it('takes a bare port as a YAML integer, as the docs allow, and refuses one out of range', () => {
    expect(load(`${minimal}\nmetrics: 9464\n`).metrics).toBe('9464');
    expect(load(`${minimal}\nmetrics: "9464"\n`).metrics).toBe('9464');
    expect(errorOf(`${minimal}\nmetrics: 70000\n`).field).toBe('metrics');
    expect(errorOf(`${minimal}\nmetrics: 94.5\n`).field).toBe('metrics');
  });

  it('names the field and the expected value on bad input', () => {
    expect(errorOf(`${minimal}\nmtu: 20\n`).field).toBe('mtu');
    expect(errorOf(`${minimal}\nmtu: 20\n`).message).toContain('an integer from 68 to 65535');
    expect(errorOf(`${minimal}\ngate: { maxHeldFrames: -1 }\n`).field).toBe('gate.maxHeldFrames');
    expect(errorOf(`${minimal}\ndivergences: out.pcap\n`).message).toContain('ending in .pcapng');
    expect(errorOf(`${minimal}\nmetrics: nowhere\n`).field).toBe('metrics');
    const health = errorOf(`${minimal}\nprimaryHealth: { kind: ping }\n`);
    expect(health.field).toBe('primaryHealth.kind');
    expect(health.message).toContain('"lab"');
    const unknown = errorOf(`${minimal}\ngate: { maxHeld: 3 }\n`);
    expect(unknown.field).toBe('gate.maxHeld');
    expect(unknown.message).toContain('maxHeldFrames');
  });

  it('refuses the same interface twice and a missing interface', () => {
    const same = errorOf(minimal.replace('secondary: xsec', 'secondary: xpri'));
    expect(same.field).toBe('interfaces.secondary');
    expect(same.message).toContain('interfaces.primary');
    expect(errorOf(minimal.replace(', secondary: xsec', '')).field).toBe('interfaces.secondary');
  });

  it('checks the checkpoint section with the checkpoint schema, fields prefixed', () => {
    expect(errorOf(minimal.replace('plaintext: true', 'plaintext: false')).field).toBe('checkpoint.tls');
    const noSave = errorOf(
      minimal.replace(
        '{ kind: lab, control: /run/colo/primary.sock }',
        '{ kind: exec, suspend: "true", resume: "true" }',
      ),
    );
    expect(noSave.field).toBe('checkpoint.driver.save');
  });
});
