import { describe, expect, it } from 'vitest';
import { parseCompareFlags } from '../../src/cli/commands/compare.js';
import { passthroughFromFlags } from '../../src/config/passthrough.js';
import { defaultModeThresholds } from '../../compare/protection-mode.js';
import type { ProtectionConfig } from '../../src/config/protection-mode.js';
import type { CompareService } from '../../src/dropin/compare-service.js';
import { compareFlags, configError, configFiles } from '../support/config-files.js';
import { buildUdp } from '../support/wire-build.js';
import { frameOf, type Peer, until, withTimeout } from '../ports/support.js';
import { loopbackCompare, XEN } from './support.js';

/** `colo-proxy compare` in periodic and hybrid mode: in-process, real loopback sockets, Xen's notify protocol. */

const compare = loopbackCompare();

const configs = configFiles('colo-compare-protection-');

const udp = (dstPort: number, payload: string): Buffer =>
  buildUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 4000, dstPort, payload });

async function service(protection: Partial<ProtectionConfig>, passthrough: string[] = []): Promise<Wired> {
  const s = await compare.start({
    passthrough: passthroughFromFlags('--passthrough', passthrough),
    protection: { mode: 'compare', ...defaultModeThresholds, ...protection },
  });
  const peer = (name: string) => compare.peer(s, name);
  const out = await peer('outdev');
  const notify = await peer('notify-dev');
  await notify.write(XEN.init);
  await notify.sink.waitFor(1);
  const pri = await peer('primary-in');
  const sec = await peer('secondary-in');
  return { service: s, loop: s.loop, out, xen: notify, pri, sec };
}

/** The service and its peers; `xen` plays libxl on --notify-dev. */
interface Wired {
  service: CompareService;
  loop: CompareService['loop'];
  out: Peer;
  xen: Peer;
  pri: Peer;
  sec: Peer;
}

/** Waits for the n-th DO_CHECKPOINT on the notify peer (its first message is the INIT reply). */
const doCheckpoints = (s: Wired, n: number) => s.xen.sink.waitFor(n + 1);

describe('colo-proxy compare --protection-mode periodic (real sockets)', { timeout: 60_000 }, () => {
  it('holds matched output until COLO_CHECKPOINT, releases only what arrived before the request, in order', async () => {
    const s = await service({ mode: 'periodic', periodMs: 100 }, ['udp:5353']);
    await doCheckpoints(s, 1); // request 1 goes out before anything arrived
    // A pass-through frame leaves at once, with no twin and no checkpoint.
    await s.pri.write(frameOf(udp(5353, 'health')));
    await s.out.sink.waitFor(1);
    expect(s.out.sink.frames[0].frame.equals(udp(5353, 'health'))).toBe(true);
    // A matched pair after request 1: held.
    await s.pri.write(frameOf(udp(53, 'one')));
    await s.sec.write(frameOf(udp(53, 'one')));
    await until(() => s.loop.protectionStatus().heldFrames === 1, 10_000, 'for the first pair to be held');
    // The held-frames gauge (sampled at each scan) counts what periodic mode holds.
    await until(() => s.service.metrics.snapshot().held.frames === 1, 10_000, 'for the held gauge');
    await s.xen.write(XEN.checkpoint); // answers request 1: its frame arrived later, so it stays held
    await until(() => s.loop.counters.flushes === 1, 10_000, 'for the first checkpoint');
    expect(s.loop.protectionStatus().heldFrames).toBe(1);

    await doCheckpoints(s, 2); // request 2: after the first pair
    await s.pri.write(frameOf(udp(53, 'two')));
    await s.sec.write(frameOf(udp(53, 'two')));
    await until(() => s.loop.protectionStatus().heldFrames === 2, 10_000, 'for the second pair to be held');
    await s.xen.write(XEN.checkpoint);
    await s.out.sink.waitFor(2);
    expect(s.out.sink.frames[1].frame.equals(udp(53, 'one'))).toBe(true);
    expect(s.loop.protectionStatus().heldFrames).toBe(1);

    await doCheckpoints(s, 3);
    await s.xen.write(XEN.checkpoint);
    await s.out.sink.waitFor(3);
    expect(s.out.sink.frames[2].frame.equals(udp(53, 'two'))).toBe(true);
    expect(new Set(s.xen.texts().slice(1))).toEqual(new Set(['DO_CHECKPOINT']));
    const status = s.service.status();
    expect(status.protection).toMatchObject({ mode: 'periodic', active: 'periodic', heldFrames: 0 });
    expect(status.loop).toMatchObject({ periodicReleased: 2, divergences: 0, released: 3 });
    expect(status.loop.periodicRequestsSent).toBeGreaterThanOrEqual(3);
  });

  it('hybrid: divergence checkpoints switch to periodic; the switch is in /stats and colo_mode_switches_total', async () => {
    const s = await service({ mode: 'hybrid', maxDivergenceCheckpoints: 0, periodMs: 60_000 });
    await s.pri.write(frameOf(udp(53, 'primary')));
    await s.sec.write(frameOf(udp(53, 'secondary')));
    await doCheckpoints(s, 1);
    await until(() => s.loop.counters.modeSwitches === 1, 10_000, 'for the switch');
    const status = s.service.status();
    expect(status.protection.active).toBe('periodic');
    expect(status.protection.switches.map((c) => [c.from, c.to, c.reason])).toEqual([
      ['compare', 'periodic', 'divergence-rate'],
    ]);
    // In periodic mode a divergence is counted in the background and asks for nothing.
    await s.pri.write(frameOf(udp(54, 'primary')));
    await s.sec.write(frameOf(udp(54, 'secondary')));
    await until(() => s.loop.counters.backgroundDivergences === 1, 10_000, 'for the background divergence');
    expect(s.loop.counters.checkpointRequestsSent).toBe(1);
    const text = await s.service.metrics.registry.metrics();
    expect(text).toMatch(/colo_mode_switches_total\{from="compare",to="periodic",reason="divergence-rate"\} 1/);
    // The diverged primary frame is released by the checkpoint its divergence asked for.
    await s.xen.write(XEN.checkpoint);
    await withTimeout(s.out.sink.waitFor(1), 10_000, 'for the release');
    expect(s.out.sink.frames[0].frame.equals(udp(53, 'primary'))).toBe(true);
  });
});

describe('colo-proxy compare: protection settings', () => {
  const notify = { notifyDev: 'listen:127.0.0.1:9004' };

  it('defaults to compare; --protection-* flags win over the --config file', () => {
    expect(parseCompareFlags(compareFlags({})).protection).toMatchObject({ mode: 'compare', periodMs: 100 });
    const config = configs.write('protection:\n  mode: hybrid\n  periodMs: 250\n  calmMs: 5000\n');
    const parsed = parseCompareFlags(compareFlags({ ...notify, config, protectionPeriodMs: '50' })).protection;
    expect(parsed).toMatchObject({ mode: 'hybrid', periodMs: 50, calmMs: 5000, windowMs: 500 });
  });

  it('names the field of a bad value, and refuses periodic or hybrid without --notify-dev', () => {
    const bad = configError(() => parseCompareFlags(compareFlags({ ...notify, protectionMaxPausedShare: '1.5' })));
    expect(bad.field).toBe('protection.maxPausedShare');
    expect(configError(() => parseCompareFlags(compareFlags({ ...notify, protectionMode: 'remus' }))).field).toBe(
      'protection.mode',
    );
    const unknown = configs.write('protection:\n  perodMs: 5\n');
    expect(configError(() => parseCompareFlags(compareFlags({ ...notify, config: unknown }))).field).toBe(
      'protection.perodMs',
    );
    const lonely = configError(() => parseCompareFlags(compareFlags({ protectionMode: 'periodic' })));
    expect(lonely.field).toBe('protection.mode');
    expect(lonely.message).toMatch(/--notify-dev/);
  });
});
