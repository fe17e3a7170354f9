import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/checkpoint/agent.js';
import { Coordinator } from '../../src/checkpoint/coordinator.js';
import { linkAgent, linkCoordinator } from '../../src/checkpoint/link.js';
import { formatEndpoint, memoryPair, parseEndpoint } from '../../src/checkpoint/transport.js';
import { FakeDriver } from './fake-driver.js';
import { fastTimeouts, withTimeout } from './harness.js';

describe('endpoints', () => {
  it('parses the four forms, IPv6 in brackets, and formats them back', () => {
    expect(parseEndpoint('listen:127.0.0.1:9000')).toEqual({
      mode: 'listen',
      kind: 'tcp',
      host: '127.0.0.1',
      port: 9000,
    });
    expect(parseEndpoint('connect:[::1]:9000')).toEqual({ mode: 'connect', kind: 'tcp', host: '::1', port: 9000 });
    expect(parseEndpoint('listen:unix:/run/colo.sock')).toEqual({
      mode: 'listen',
      kind: 'unix',
      path: '/run/colo.sock',
    });
    expect(parseEndpoint('connect:unix:rel.sock')).toEqual({ mode: 'connect', kind: 'unix', path: 'rel.sock' });
    for (const text of ['listen:[::1]:9000', 'connect:unix:/a', 'listen:0.0.0.0:0']) {
      expect(formatEndpoint(parseEndpoint(text))).toBe(text);
    }
  });

  it('refuses malformed endpoints with a ConfigError naming the field', () => {
    for (const text of [
      'bind:1.2.3.4:5',
      'listen:1.2.3.4',
      'connect:host:0',
      'listen:host:70000',
      'listen:unix:',
      ':9',
    ]) {
      expect(() => parseEndpoint(text, 'endpoint')).toThrow(/config field "endpoint"/);
    }
  });
});

describe('any duplex stream', () => {
  it('runs the protocol over an in-memory pair', async () => {
    const primary = new FakeDriver(Buffer.from('in memory'));
    const secondary = new FakeDriver();
    const coordinator = new Coordinator({ driver: primary, timeouts: fastTimeouts, checkpointTimerMs: null });
    const agent = new Agent({ driver: secondary, timeouts: fastTimeouts });
    const [a, b] = memoryPair();
    const ready = once(coordinator, 'ready');
    coordinator.attach(a, 'memory');
    const served = agent.serve(b, 'memory');
    await withTimeout(ready, 2000, 'ready');
    primary.state = Buffer.from('second');
    expect((await coordinator.checkpoint('payload')).ok).toBe(true);
    expect(secondary.state.toString()).toBe('second');
    // Closing the primary's end is a lost primary for the agent (it was protected).
    const lost = once(agent, 'primary-lost');
    a.destroy();
    await withTimeout(lost, 2000, 'primary-lost');
    expect((await served).kind).toBe('primary-lost');
    await coordinator.close();
  });

  it('runs the protocol over a unix socket, the agent listening', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'colo-unix-'));
    const primary = new FakeDriver(Buffer.from('over unix'));
    const secondary = new FakeDriver();
    const coordinator = new Coordinator({ driver: primary, timeouts: fastTimeouts, checkpointTimerMs: null });
    const agent = new Agent({ driver: secondary, timeouts: fastTimeouts });
    const path = join(dir, 'control.sock');
    const ready = once(coordinator, 'ready');
    const listening = await linkAgent(agent, parseEndpoint(`listen:unix:${path}`), { material: null });
    const dialling = await linkCoordinator(coordinator, parseEndpoint(`connect:unix:${path}`), { material: null });
    try {
      await withTimeout(ready, 2000, 'ready');
      expect(secondary.state.toString()).toBe('over unix');
      expect((await coordinator.checkpoint('payload')).ok).toBe(true);
    } finally {
      await coordinator.close();
      await agent.close();
      await dialling.close();
      await listening.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
