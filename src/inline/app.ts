import type { EventEmitter } from 'node:events';
import { InlineProxy, type FramePort } from '../../proxy/inline.js';
import { LivePort, liveCaptureAvailable } from '../../proxy/ports/live.js';
import type { LivePortCounters, LivePortOptions } from '../../proxy/ports/capture.js';
import { RingPort } from '../../proxy/ports/ring.js';
import {
  RingCaptureUnavailable,
  ringCaptureAvailable,
  ringCaptureError,
  ringClockUs,
} from '../../proxy/ports/packet-ring.js';
import { DivergenceRecorder } from '../capture/divergence-recorder.js';
import { Coordinator } from '../checkpoint/coordinator.js';
import type { PassthroughRule } from '../../compare/passthrough.js';
import { outcomeLabel } from '../checkpoint/engine.js';
import { linkCoordinator, linkOptions, type Link } from '../checkpoint/link.js';
import { recordCheckpointMetrics } from '../checkpoint/metrics.js';
import { prepareCheckpointRole } from '../checkpoint/drivers/index.js';
import { checkpointEndpoint } from '../config/checkpoint.js';
import type { InlineConfig } from '../config/inline.js';
import { thresholdsOf } from '../config/protection-mode.js';
import type { Logger } from '../log.js';
import { divergenceRecord } from '../stats/divergence-record.js';
import { EventLog } from '../stats/events.js';
import { reportedPhasesMs } from '../stats/metric-names.js';
import { ColoMetrics } from '../stats/metrics.js';
import { registerPassthroughMetrics } from '../stats/passthrough-metrics.js';
import { parseListenAddress, startStatsServer, type StatsServer } from '../stats/server.js';
import { probeFor, watchPrimary, type HealthWatch } from './health.js';
import { checkOffloads } from './offloads.js';

/**
 * `colo-proxy run`: builds the inline proxy from its config. Order matters: offloads are checked before
 * any capture opens; the data plane and its ports come up before the coordinator dials the secondary, so
 * the primary's service is reachable (unprotected, passed through) while the secondary is being seeded.
 */

/** One line of `run`'s stdout (NDJSON): what a supervisor or a test waits on. `time` is epoch ms. */
export type AppEvent = { event: string; time: number } & Record<string, unknown>;

export type PortLike = FramePort & Pick<EventEmitter, 'on'> & { readonly counters: LivePortCounters };

export type CaptureBackend = 'ring' | 'pcap';

/**
 * The capture backend: the configured one, else ring when its addon is built, else pcap when cap is. With
 * neither, a LiveCaptureUnavailable naming both installs (`run` exits 4 with it).
 */
export function chooseCapture(configured: CaptureBackend | undefined): CaptureBackend {
  if (configured !== undefined) return configured;
  if (ringCaptureAvailable()) return 'ring';
  if (liveCaptureAvailable()) return 'pcap';
  throw new RingCaptureUnavailable(ringCaptureError(), false);
}

/** `receiveTimes`: a ring port keeps each frame's kernel receive time (the pcap backend has none). */
export function openLivePort(capture: CaptureBackend, options: LivePortOptions, receiveTimes = false): PortLike {
  return capture === 'ring' ? new RingPort({ ...options, timestamps: receiveTimes }) : new LivePort(options);
}

export interface AppDependencies {
  /** Opens one interface; by default a RingPort or LivePort per chooseCapture() (throws LiveCaptureUnavailable). */
  openPort?: (options: LivePortOptions) => PortLike;
  /** Skips the ethtool check (tests with memory ports). */
  checkOffloads?: (ifaces: string[]) => Promise<void>;
  onEvent?: (event: AppEvent) => void;
  /**
   * Runs once the capture sockets, the listeners and the output files are open and before the health checks
   * or the checkpoint link start anything (`run` drops root here: src/inline/privileges.ts).
   */
  afterOpen?: () => void;
}

export interface InlineApp {
  readonly proxy: InlineProxy;
  readonly coordinator: Coordinator;
  readonly metrics: ColoMetrics;
  readonly stats: StatsServer | null;
  status(): object;
  close(): Promise<void>;
}

/** Epoch milliseconds with sub-millisecond resolution: comparison latencies and pcapng times both need it. */
const wallClock = (): number => performance.timeOrigin + performance.now();

export async function startInlineApp(
  config: InlineConfig,
  logger: Logger,
  deps: AppDependencies = {},
): Promise<InlineApp> {
  const emit = (event: string, fields: Record<string, unknown> = {}): void =>
    deps.onEvent?.({ event, time: Date.now(), ...fields });
  const ifaces = config.interfaces;
  if (config.offloadCheck)
    await (deps.checkOffloads ?? checkOffloads)([ifaces.client, ifaces.primary, ifaces.secondary]);

  const closers: Array<() => Promise<void> | void> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'error while shutting down');
      }
    }
  };

  try {
    const events = config.events === undefined ? null : await EventLog.open(config.events);
    if (events) closers.push(() => events.close());
    const recorder =
      config.divergences === undefined
        ? null
        : await DivergenceRecorder.open(config.divergences, { comment: 'colo-proxy run: diverging packet pairs' });
    if (recorder) closers.push(() => recorder.close());

    const { material, driver } = await prepareCheckpointRole(config.checkpoint, 'primary', logger);
    closers.push(() => driver.close?.());
    // The proxy owns CHKPOINT_TIMER: a checkpoint it did not start would not hold the gate.
    const coordinator = new Coordinator({
      driver,
      timeouts: config.checkpoint.timeouts,
      maxStateBytes: config.checkpoint.maxStateBytes,
      checkpointTimerMs: null,
      logger,
      // The proxy exists by the time any checkpoint runs (the link is made after it).
      onPrimaryStopping: () => proxy.primaryStopping(),
    });
    const proxy: InlineProxy = new InlineProxy(
      coordinator,
      {
        compare: { ...config.compare, passthrough: config.passthrough },
        rewriter: {
          maxHeldPerConnection: config.rewriter.maxHeldPerConnection,
          maxConnections: config.rewriter.maxConnections,
          lingerMs: config.rewriter.lingerMs,
          idleMs: config.rewriter.idleMs,
        },
        resetOffsetsOnCheckpoint: config.rewriter.resetOffsetsOnCheckpoint,
        maxHeldFrames: config.gate.maxHeldFrames,
        maxHeldIngress: config.mirror.maxHeldIngress,
        checkpointTimerMs: config.checkpoint.checkpointTimerMs,
        holdFromPrimaryStop: true,
        protection: { mode: config.protection.mode, thresholds: thresholdsOf(config.protection) },
      },
      wallClock,
    );

    const metrics = new ColoMetrics();
    metrics.setMode('unprotected');
    metrics.setPeerConnected('secondary', false);
    const sync = new CounterSync(proxy, metrics);
    registerPassthroughMetrics(metrics.registry, () => proxy.engine.stats());
    closers.push(recordCheckpointMetrics(coordinator, metrics));
    wireObservers({ proxy, coordinator, metrics, events, recorder, logger, emit });

    // null: the caller's ports (tests), no capture backend.
    let capture: CaptureBackend | null = null;
    let openPort = deps.openPort;
    if (openPort === undefined) {
      const backend = chooseCapture(config.capture);
      capture = backend;
      // The secondary's receive times mark which of its frames the replaced VM sent (InlineProxy.attach).
      openPort = (options: LivePortOptions) => openLivePort(backend, options, options.name === 'secondary');
    }
    const ports = {} as Record<'client' | 'primary' | 'secondary', PortLike>;
    for (const role of ['client', 'primary', 'secondary'] as const) {
      const port = openPort({
        name: role,
        iface: ifaces[role],
        sink: proxy.sinks[role],
        bufferFrames: config.captureBufferFrames,
        mtu: config.mtu,
      });
      ports[role] = port;
      closers.push(() => port.close());
      port.on('oversized', (message: string) => {
        logger.error({ iface: ifaces[role], role }, message);
        emit('oversized', { role, iface: ifaces[role], message });
      });
      // Ring ports only: the kernel dropped frames because the receive ring was full (a starved process).
      // At most one line a second per port: under overload every batch reports more.
      let dropsLoggedAt = -Infinity;
      let dropsUnlogged = 0;
      port.on('drops', (added: number, total: number) => {
        metrics.recordCaptureDrops(role, added);
        dropsUnlogged += added;
        if (performance.now() - dropsLoggedAt < 1000) return;
        dropsLoggedAt = performance.now();
        logger.warn(
          { iface: ifaces[role], role, added: dropsUnlogged, total },
          'the kernel dropped frames: the capture ring was full (raise captureBufferFrames, or give the proxy CPU)',
        );
        dropsUnlogged = 0;
      });
    }
    const secondaryPort = ports.secondary;
    proxy.attach(
      ports,
      // 0: the ring keeps no receive times (a port opened without them): never taken for a replaced VM's frame.
      secondaryPort instanceof RingPort
        ? { frame: () => secondaryPort.frameTimeUs || Infinity, now: ringClockUs }
        : undefined,
    );
    proxy.start();
    closers.push(() => proxy.stop());
    const sampler = setInterval(() => sync.run(), 500);
    sampler.unref();
    closers.push(() => clearInterval(sampler));

    let health: HealthWatch | null = null;
    let link: Link | null = null;
    const portCounters = (): object =>
      Object.fromEntries(
        Object.entries(ports).map(([role, port]) => [role, { iface: ifaces[role as 'client'], ...port.counters }]),
      );
    const status = (): object => {
      sync.run();
      // The stats server takes its snapshot before calling this: a fresh one, after the sync, replaces it.
      return {
        ...metrics.snapshot(),
        inline: proxy.status(),
        ports: portCounters(),
        primaryHealth: health ? { failing: health.failing } : null,
      };
    };
    let stats: StatsServer | null = null;
    if (config.metrics !== undefined) {
      const address = parseListenAddress(config.metrics, 'metrics');
      const passthrough = {
        list: () => proxy.engine.passthroughRules(),
        replace: (rules: readonly PassthroughRule[]) => proxy.engine.setPassthrough(rules),
      };
      stats = await startStatsServer({ host: address.host, port: address.port, metrics, status, passthrough });
      const server = stats;
      closers.push(() => server.close());
    }
    // Root is kept for opening only: after the drop, nothing has been dialled or spawned yet. A connect:
    // endpoint is dialled after it (as it is on every reconnect); a listen: one binds before it.
    const endpoint = checkpointEndpoint(config.checkpoint);
    if (endpoint.mode === 'connect') deps.afterOpen?.();

    const failover = (reason: string): void => {
      if (proxy.mode === 'failover') return;
      logger.error({ reason }, 'primary lost: failing over to the secondary');
      proxy.primaryLost(reason);
      health?.stop();
      // The coordinator has no primary left to checkpoint; closing it tells the agent the primary is gone.
      void coordinator.close().then(() => link?.close());
    };
    coordinator.on('primary-lost', (event) => failover(event.error.message));
    closers.push(() => coordinator.close());
    link = await linkCoordinator(coordinator, endpoint, linkOptions(config.checkpoint.timeouts, material, logger));
    const activeLink = link;
    closers.push(() => activeLink.close());
    if (endpoint.mode === 'listen') deps.afterOpen?.();
    if (config.primaryHealth.kind !== 'none') {
      const check = config.primaryHealth;
      health = watchPrimary({
        probe: probeFor(check),
        intervalMs: check.intervalMs,
        failures: check.failures,
        timeoutMs: check.timeoutMs,
        onFailure: (reason, inARow) => {
          logger.warn({ reason, inARow, of: check.failures }, 'primary health check failed');
          emit('primary-health', { ok: false, reason, inARow });
        },
        onLost: failover,
      });
      closers.push(() => health?.stop());
    }

    emit('started', {
      interfaces: ifaces,
      capture,
      endpoint: config.checkpoint.endpoint,
      metrics: stats ? `${stats.host}:${stats.port}` : null,
    });
    logger.info({ interfaces: ifaces, capture, mode: proxy.mode }, 'inline proxy running');
    return { proxy, coordinator, metrics, stats, status, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

interface Observers {
  proxy: InlineProxy;
  coordinator: Coordinator;
  metrics: ColoMetrics;
  events: EventLog | null;
  recorder: DivergenceRecorder | null;
  logger: Logger;
  emit: (event: string, fields?: Record<string, unknown>) => void;
}

function wireObservers({ proxy, coordinator, metrics, events, recorder, logger, emit }: Observers): void {
  proxy.on('mode', ({ mode, reason }) => {
    metrics.setMode(mode);
    events?.mode(Date.now(), mode, reason);
    const level = mode === 'solo' || mode === 'failover' ? 'error' : 'info';
    logger[level]({ mode, reason }, `mode: ${mode}`);
    emit('mode', { mode, reason });
  });
  proxy.on('divergence', (d) => {
    metrics.divergence(d);
    events?.divergence(d);
    recorder?.record(d);
    emit('divergence', { ...divergenceRecord(d) });
  });
  proxy.on('protection-mode', (change) => {
    metrics.modeSwitch(change);
    events?.modeSwitch(Date.now(), change);
    const { at: _at, ...fields } = change;
    logger.info(fields, `protection mode: ${change.from} -> ${change.to} (${change.reason})`);
    emit('protection-mode', { ...fields });
  });
  proxy.on('malformed', ({ side, reason }) => metrics.recordMalformed(side, reason));
  proxy.on('checkpoint-request', ({ reason }) => metrics.recordCheckpointRequest(reason));
  proxy.on('checkpoint-start', ({ reason }) => emit('checkpoint-start', { reason }));
  proxy.on('checkpoint', (done) => emit('checkpoint-loaded', { ...done }));
  coordinator.on('ready', (event) => {
    metrics.setPeerConnected('secondary', true);
    emit('ready', { ...event });
  });
  coordinator.on('secondary-lost', (event) => {
    metrics.setPeerConnected('secondary', false);
    emit('secondary-lost', { reason: event.reason, message: event.error.message, wasProtected: event.wasProtected });
  });
  coordinator.on('checkpoint', (report) => {
    events?.checkpoint(Date.now(), report.reason, outcomeLabel(report), reportedPhasesMs(report.durations));
    emit('checkpoint', {
      reason: report.reason,
      reasons: report.reasons,
      ok: report.ok,
      seeding: report.seeding,
      durationsMs: report.durations,
      ...(report.ok ? {} : { error: report.error.code, message: report.error.message }),
    });
  });
}

/**
 * The data plane keeps plain counters (no per-frame metric calls); this publishes their growth into the
 * Prometheus counters twice a second and on every /stats request.
 */
class CounterSync {
  private last = { primary: 0, secondary: 0, released: 0, dropped: 0 };

  constructor(
    private readonly proxy: InlineProxy,
    private readonly metrics: ColoMetrics,
  ) {}

  run(): void {
    const c = this.proxy.counters;
    const released = c.released + c.passedThrough + c.failoverReleased;
    const now = { primary: c.framesIn.primary, secondary: c.framesIn.secondary, released, dropped: c.secondaryDropped };
    this.metrics.recordFramesIn('primary', now.primary - this.last.primary);
    this.metrics.recordFramesIn('secondary', now.secondary - this.last.secondary);
    this.metrics.released(now.released - this.last.released);
    this.metrics.dropped(now.dropped - this.last.dropped);
    this.last = now;
    const engine = this.proxy.engine.stats();
    this.metrics.setConnections(engine.connections);
    this.metrics.setQueueDepth('primary', engine.heldPrimaryPackets);
    this.metrics.setQueueDepth('secondary', engine.heldSecondaryPackets);
    this.metrics.setHeld(engine.heldPrimaryPackets, engine.heldPrimaryBytes);
  }
}
