/**
 * The inline proxy's protection modes (proxy/checkpoint-cycle.ts): periodic holds all primary output for
 * the next checkpoint; hybrid switches to periodic when divergence checkpoints crowd and back when the
 * background comparison calms; pass-through flows are released at once whatever holds. Memory ports, a
 * checkpoint engine the test finishes, fake timers and an injected clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parsePassthroughRules } from '../../compare/passthrough.js';
import type { ModeSwitch, ModeThresholds, ProtectionMode } from '../../compare/protection-mode.js';
import { dissect } from '../../compare/wire/dissect.js';
import { FrameInfo } from '../../compare/wire/frame-info.js';
import { InlineProxy } from '../../proxy/inline.js';
import { MemoryPort } from '../../proxy/port.js';
import { buildUdp } from '../support/wire-build.js';
import { FakeCheckpoints } from './inline-fates.js';

const thresholds: ModeThresholds = {
  periodMs: 100,
  windowMs: 1000,
  maxDivergenceCheckpoints: 2,
  maxPausedShare: 1,
  calmMs: 500,
  calmDivergences: 2,
};

function setup(mode: ProtectionMode, passthrough: string[] = []) {
  let now = 0;
  const engine = new FakeCheckpoints(true);
  const started: string[] = [];
  const rules = parsePassthroughRules(passthrough);
  if (!rules.ok) throw new Error('bad rule');
  const proxy = new InlineProxy(
    engine,
    {
      checkpointTimerMs: 0,
      resetOffsetsOnCheckpoint: false,
      compare: { passthrough: rules.value },
      protection: { mode, thresholds },
    },
    () => now,
  );
  const ports = { client: new MemoryPort(), primary: new MemoryPort(), secondary: new MemoryPort() };
  proxy.attach(ports);
  const switches: ModeSwitch[] = [];
  proxy.on('protection-mode', (change) => switches.push(change));
  proxy.on('checkpoint-start', ({ reason }) => started.push(reason));
  const requested: string[] = [];
  proxy.on('checkpoint-request', ({ reason }) => requested.push(reason));
  proxy.start();
  const advance = (ms: number) => {
    now += ms;
    vi.advanceTimersByTime(ms);
  };
  /** A reply on UDP port `port` from both VMs; the secondary's last byte differs when `diverge`. */
  const reply = (payload: string, diverge = false, port = 7000) => {
    const frame = (text: string) =>
      buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: port, dstPort: 40000, payload: text });
    proxy.sinks.primary.onFrame(frame(payload), 0);
    proxy.sinks.secondary.onFrame(frame(diverge ? `${payload.slice(0, -1)}!` : payload), 0);
  };
  /** The payloads the client has received, in order. */
  const delivered = () =>
    ports.client.sent.map((f) => {
      const info = new FrameInfo();
      expect(dissect(f, 0, f.length, info)).toBeNull();
      return f.subarray(info.payloadOffset, info.payloadOffset + info.payloadLength).toString();
    });
  return { proxy, engine, started, requested, switches, advance, reply, delivered };
}

describe('InlineProxy protection modes', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('periodic: holds all output until the next checkpoint, one every P, and keeps what came after its hold for the one after', async () => {
    const h = setup('periodic');
    h.reply('one');
    h.reply('two');
    expect(h.delivered()).toEqual([]);
    h.advance(thresholds.periodMs);
    expect(h.started).toEqual(['periodic']);
    // After the checkpoint's hold: this belongs to the next epoch.
    h.reply('three');
    await h.engine.finish('ok');
    expect(h.delivered()).toEqual(['one', 'two']);
    h.advance(thresholds.periodMs);
    expect(h.started).toEqual(['periodic', 'periodic']);
    await h.engine.finish('ok');
    expect(h.delivered()).toEqual(['one', 'two', 'three']);
    // Timed checkpoints are requests like any other: counted and reported with their reason.
    expect(h.requested).toEqual(['periodic', 'periodic']);
    expect(h.proxy.counters.checkpointRequests).toBe(2);
    // A divergence asks for nothing in periodic mode: it is counted as a background divergence.
    h.reply('four', true);
    expect(h.started).toHaveLength(2);
    expect(h.proxy.counters.backgroundDivergences).toBe(1);
    expect(h.switches).toEqual([]);
  });

  it('periodic: a pass-through flow is released at once while everything else waits', async () => {
    const h = setup('periodic', ['udp:5353']);
    h.reply('held');
    h.reply('passed', false, 5353);
    expect(h.delivered()).toEqual(['passed']);
    expect(h.proxy.counters.passedByRuleWhileHeld).toBe(1);
    h.advance(thresholds.periodMs);
    await h.engine.finish('ok');
    expect(h.delivered()).toEqual(['passed', 'held']);
  });

  it('hybrid: switches to periodic when divergence checkpoints crowd, and back to compare when calm', async () => {
    const h = setup('hybrid');
    for (let i = 0; i < 3; i++) {
      h.reply(`d${i}`, true);
      h.advance(10);
      await h.engine.finish('ok');
    }
    expect(h.started).toEqual(['payload', 'payload', 'payload']);
    expect(h.switches.map((s) => [s.from, s.to, s.reason])).toEqual([['compare', 'periodic', 'divergence-rate']]);
    expect(h.proxy.protection().active).toBe('periodic');
    expect(h.proxy.counters.modeSwitches).toBe(1);
    const before = h.delivered().length;
    // Periodic now: matching output is held, and a divergence is only counted.
    h.reply('calm-1');
    h.reply('odd', true);
    expect(h.delivered()).toHaveLength(before);
    expect(h.started).toHaveLength(3);
    // Periodic checkpoints release it; after Q with fewer than M background divergences, back to compare.
    for (let t = 0; t < thresholds.calmMs; t += thresholds.periodMs) {
      h.advance(thresholds.periodMs);
      await h.engine.finish('ok');
    }
    h.advance(thresholds.periodMs);
    while (h.engine.running > 0) await h.engine.finish('ok');
    expect(h.switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ['compare', 'periodic', 'divergence-rate'],
      ['periodic', 'compare', 'calm'],
    ]);
    // Divergences asked for checkpoints only while comparing; periodic mode's came from its period.
    expect(new Set(h.requested)).toEqual(new Set(['payload', 'periodic']));
    expect(h.requested.filter((r) => r === 'payload')).toHaveLength(3);
    expect(h.delivered().slice(before)).toEqual(['calm-1', 'odd']);
    // Compare mode again: matching output passes at once.
    h.reply('live');
    expect(h.delivered().at(-1)).toBe('live');
    expect(h.proxy.protection()).toMatchObject({ mode: 'hybrid', active: 'compare', switches: 2 });
  });

  it('hybrid: a workload whose replies all match never leaves compare mode', async () => {
    const h = setup('hybrid');
    for (let i = 0; i < 50; i++) {
      h.reply(`r${i}`);
      h.advance(50);
    }
    expect(h.switches).toEqual([]);
    expect(h.started).toEqual([]);
    expect(h.delivered()).toHaveLength(50);
  });
});
