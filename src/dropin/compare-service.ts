import type { Logger } from 'pino';
import { CompareEngine, defaultCompareOptions, type EngineStats } from '../../compare/engine.js';
import { CompareLoop } from '../../proxy/compare-loop.js';
import type { LoopCounters } from '../../proxy/compare-loop-types.js';
import type { ProtectionStatus } from '../../proxy/loop-protection.js';
import {
  FramedSocket,
  type ChunkSink,
  type DisconnectInfo,
  type FramedSocketCounters,
} from '../../proxy/ports/framed-socket.js';
import { formatSocketAddress, type SocketAddress } from '../../proxy/ports/socket-address.js';
import { RateLimitedLog } from '../rate-limited-log.js';
import { BoundMetrics } from '../stats/bound-metrics.js';
import { registerPassthroughMetrics } from '../stats/passthrough-metrics.js';
import { ColoMetrics } from '../stats/metrics.js';
import { startStatsServer, type ListenAddress, type StatsServer } from '../stats/server.js';
import { XenNotify, type XenNotifyCounters } from './xen-notify.js';
import type { PassthroughRule } from '../../compare/passthrough.js';
import { thresholdsOf, type ProtectionConfig } from '../config/protection-mode.js';

/** `colo-proxy compare`'s settings, named after QEMU's colo-compare properties. */
export interface CompareSettings {
  primaryIn: SocketAddress;
  secondaryIn: SocketAddress;
  outdev: SocketAddress;
  notifyDev: SocketAddress | null;
  compareTimeoutMs: number;
  expiredScanCycleMs: number;
  maxQueueSize: number;
  /**
   * Hard bounds on everything the engine holds (both sides together); each side may hold two thirds.
   * Absent: the engine's defaults (compare/engine-options.ts).
   */
  maxHeldFrames?: number;
  maxHeldBytes?: number;
  vnetHdr: boolean;
  metrics: ListenAddress | null;
  /** Flows released uncompared (--passthrough); /passthrough on the metrics server replaces them. */
  passthrough?: readonly PassthroughRule[];
  /**
   * The protection mode and its thresholds (docs/compare.md, "Protection modes"); absent: compare. Periodic
   * and hybrid need notifyDev. What periodic mode holds is bounded by maxHeldFrames and maxHeldBytes.
   */
  protection?: ProtectionConfig;
}

/** How long shutdown waits for outdev's socket to take the final flush before closing it. */
export const SHUTDOWN_DRAIN_MS = 2000;

/** What close() did with the held frames (runCompare logs it as one line). */
export interface ShutdownReport {
  /** Held primary frames the final flush released to outdev. */
  flushedFrames: number;
  /** Held secondary frames it dropped. */
  droppedFrames: number;
  /** Output bytes outdev's socket had not taken when it closed (0: everything was delivered to the kernel). */
  undeliveredBytes: number;
  outdevConnected: boolean;
}

/** What the drop-in's /stats adds to the metrics snapshot (docs/compare.md, "GET /stats"). */
export interface CompareStatus {
  sockets: Record<string, { address: string; connected: boolean } & FramedSocketCounters>;
  loop: LoopCounters;
  notify: XenNotifyCounters | null;
  engine: EngineStats;
  protection: ProtectionStatus;
  settings: {
    compareTimeoutMs: number;
    expiredScanCycleMs: number;
    maxQueueSize: number;
    maxHeldFrames: number;
    maxHeldBytes: number;
    vnetHdrSupport: boolean;
  };
}

export interface CompareService {
  /** Where each socket actually is (kernel-chosen ports resolved), keyed by flag name without dashes. */
  readonly endpoints: Record<string, string>;
  readonly loop: CompareLoop;
  readonly metrics: ColoMetrics;
  readonly notify: XenNotify | null;
  readonly sockets: readonly FramedSocket[];
  /** The JSON /stats serves beyond the metrics snapshot. */
  status(): CompareStatus;
  /** Flushes every held primary frame to outdev (waiting up to SHUTDOWN_DRAIN_MS), then closes everything. */
  close(): Promise<ShutdownReport>;
}

/**
 * Builds the drop-in: four framed sockets, the comparison engine, the loop between them, the Xen notify
 * endpoint and (with --metrics) the statistics server. Resolves once every socket is ready: listening
 * sockets bound, connecting ones connected.
 */
export async function startCompareService(given: CompareSettings, logger: Logger): Promise<CompareService> {
  const settings = {
    ...given,
    maxHeldFrames: given.maxHeldFrames ?? defaultCompareOptions.maxHeldFrames,
    maxHeldBytes: given.maxHeldBytes ?? defaultCompareOptions.maxHeldBytes,
  };
  const engine = new CompareEngine({
    compareTimeoutMs: settings.compareTimeoutMs,
    expiredScanCycleMs: settings.expiredScanCycleMs,
    maxQueueSize: settings.maxQueueSize,
    maxHeldFrames: settings.maxHeldFrames,
    maxHeldBytes: settings.maxHeldBytes,
    maxHeldFramesPerSide: perSide(settings.maxHeldFrames),
    maxHeldBytesPerSide: perSide(settings.maxHeldBytes),
    passthrough: settings.passthrough ?? [],
  });
  const metrics = new ColoMetrics();
  const boundMetrics = new BoundMetrics(metrics.registry);
  registerPassthroughMetrics(metrics.registry, () => engine.stats());
  const lines = new RateLimitedLog(logger).start();
  const bounds = new BoundReporter(lines);
  metrics.setMode('protected');
  let notify: XenNotify | null = null;
  const loop = new CompareLoop({
    engine,
    compareTimeoutMs: settings.compareTimeoutMs,
    expiredScanCycleMs: settings.expiredScanCycleMs,
    vnetHdr: settings.vnetHdr,
    notifier: settings.notifyDev === null ? null : { requestCheckpoint: () => notify?.requestCheckpoint() },
    logger,
    lines,
    observer: metrics,
    protection:
      given.protection === undefined
        ? undefined
        : {
            mode: given.protection.mode,
            thresholds: thresholdsOf(given.protection),
            bounds: { maxFrames: settings.maxHeldFrames, maxBytes: settings.maxHeldBytes },
          },
    afterScan: () => {
      const stats = engine.stats();
      boundMetrics.update(stats);
      bounds.report(stats, settings);
      metrics.setQueueDepth('primary', stats.heldPrimaryPackets);
      metrics.setQueueDepth('secondary', stats.heldSecondaryPackets);
      // Held primary frames: the engine's, waiting for their twins, and periodic mode's, waiting for a checkpoint.
      const periodic = loop.protectionStatus();
      metrics.setHeld(stats.heldPrimaryPackets + periodic.heldFrames, stats.heldPrimaryBytes + periodic.heldBytes);
      metrics.setConnections(stats.connections);
    },
  });

  const port = (name: string, address: SocketAddress, vnetHdr: boolean, sink: ChunkSink | null) =>
    new FramedSocket({ name, address, vnetHdr, sink });
  // The inputs read into the loop's slabs: the loop reports each frame done once released or dropped, so the
  // same memory is read into again (proxy/ports/read-slabs.ts).
  const input = (name: string, address: SocketAddress, side: 'primary' | 'secondary') =>
    new FramedSocket({ name, address, vnetHdr: settings.vnetHdr, sink: loop.sinkFor(side), readSlabs: loop.readSlabs });
  const primary = input('primary-in', settings.primaryIn, 'primary');
  const secondary = input('secondary-in', settings.secondaryIn, 'secondary');
  // Nothing is expected from outdev's peer; whatever arrives is counted (bytesIn) and never parsed, so
  // garbage there cannot close the socket released frames leave through.
  const outdev = port('outdev', settings.outdev, settings.vnetHdr, null);
  const sockets = [primary, secondary, outdev];
  let notifySocket: FramedSocket | null = null;
  if (settings.notifyDev !== null) {
    notify = new XenNotify({
      logger,
      onCheckpoint: () => loop.checkpointDone(),
      isOutstanding: () => loop.checkpointOutstanding,
    });
    // Never vnet framing on notify: libxl does not send the field (QEMU's quirk is not reproduced).
    notifySocket = port('notify-dev', settings.notifyDev, false, notify);
    notify.attach(notifySocket);
    sockets.push(notifySocket);
  }
  for (const socket of sockets) {
    watch(socket, logger, metrics);
    if (socket.address.mode === 'connect') {
      logger.info({ socket: socket.name }, `${socket.name}: connecting to ${formatSocketAddress(socket.address)}`);
    }
  }

  let stats: StatsServer | null = null;
  const status = (): CompareStatus => ({
    sockets: Object.fromEntries(
      sockets.map((s) => [s.name, { address: formatSocketAddress(s.address), connected: s.connected, ...s.counters }]),
    ),
    loop: loop.counters,
    notify: notify?.counters ?? null,
    engine: engine.stats(),
    protection: loop.protectionStatus(),
    settings: {
      compareTimeoutMs: settings.compareTimeoutMs,
      expiredScanCycleMs: settings.expiredScanCycleMs,
      maxQueueSize: settings.maxQueueSize,
      maxHeldFrames: settings.maxHeldFrames,
      maxHeldBytes: settings.maxHeldBytes,
      vnetHdrSupport: settings.vnetHdr,
    },
  });

  const close = async (): Promise<ShutdownReport> => {
    const flushed = loop.shutdown();
    const undeliveredBytes = await drained(outdev, SHUTDOWN_DRAIN_MS);
    const report = { ...flushed, undeliveredBytes, outdevConnected: outdev.connected };
    loop.stop();
    lines.close();
    await Promise.all(sockets.map((s) => s.close()));
    await stats?.close();
    return report;
  };

  // Wired before any socket can accept a peer, so no frame can arrive before outdev is known.
  loop.start({ primary, secondary, outdev });
  try {
    await Promise.all(sockets.map((s) => s.start()));
    if (settings.metrics !== null) {
      const passthrough = {
        list: () => engine.passthroughRules(),
        replace: (rules: readonly PassthroughRule[]) => engine.setPassthrough(rules),
      };
      stats = await startStatsServer({ ...settings.metrics, metrics, status, passthrough });
    }
  } catch (err) {
    await close();
    throw err;
  }

  const endpoints: Record<string, string> = {
    'primary-in': primary.describe(),
    'secondary-in': secondary.describe(),
    outdev: outdev.describe(),
  };
  if (notifySocket !== null) endpoints['notify-dev'] = notifySocket.describe();
  if (stats !== null) endpoints.metrics = `${stats.host}:${stats.port}`;
  return { endpoints, loop, metrics, notify, sockets, status, close };
}

/** Each side may hold two thirds of what both together may (at least 1). */
function perSide(total: number): number {
  return Math.max(1, Math.floor((total * 2) / 3));
}

/**
 * Resolves with outdev's backlog once it is empty or `timeoutMs` passed; at once when no peer is connected
 * (nobody will take it). Polled: FramedSocket signals 'drain' only after a refused write, and this runs once.
 */
async function drained(outdev: FramedSocket, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (outdev.backlog > 0 && outdev.connected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return outdev.backlog;
}

/**
 * One line per scan cycle at most (through the rate-limited log) when the engine passed a bound since the
 * last: how many flushes it forced and frames it released uncompared, how many new connections it refused.
 */
class BoundReporter {
  private flushes = 0;
  private released = 0;
  private refused = 0;

  constructor(private readonly lines: RateLimitedLog) {}

  report(stats: EngineStats, settings: Required<Pick<CompareSettings, 'maxHeldFrames' | 'maxHeldBytes'>>): void {
    const flushes = Object.values(stats.heldBoundFlushes).reduce((sum, n) => sum + n, 0);
    if (flushes > this.flushes) {
      this.lines.line(
        'warn',
        'held-bound',
        {
          flushes: flushes - this.flushes,
          releasedUncompared: stats.heldBoundReleased - this.released,
          byBound: stats.heldBoundFlushes,
          maxHeldFrames: settings.maxHeldFrames,
          maxHeldBytes: settings.maxHeldBytes,
        },
        'held frames reached their bound: held primary frames released uncompared (unprotected), secondary ones dropped',
      );
    }
    if (stats.connectionsRefused > this.refused) {
      this.lines.line(
        'warn',
        'connections-refused',
        { refused: stats.connectionsRefused - this.refused, connections: stats.connections },
        'connection table full of busy connections: frames of new connections passed uncompared',
      );
    }
    this.flushes = flushes;
    this.released = stats.heldBoundReleased;
    this.refused = stats.connectionsRefused;
  }
}

/** Peer comings and goings are rare and worth a line each; frames never are. */
function watch(socket: FramedSocket, logger: Logger, metrics: ColoMetrics): void {
  metrics.setPeerConnected(socket.name, false);
  socket.on('connect', (peer: string) => {
    metrics.setPeerConnected(socket.name, true);
    logger.info({ socket: socket.name, peer }, `${socket.name}: peer connected`);
  });
  socket.on('disconnect', (info: DisconnectInfo) => {
    metrics.setPeerConnected(socket.name, false);
    const level = info.reason === 'closed' || info.reason === 'shutdown' ? 'info' : 'warn';
    logger[level]({ socket: socket.name, ...info }, `${socket.name}: peer disconnected (${info.reason})`);
  });
  socket.on('socket-error', (err: Error) => logger.error({ socket: socket.name, err: err.message }, 'socket error'));
}
