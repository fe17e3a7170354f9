import type { Logger } from 'pino';
import { CompareEngine, type EngineStats } from '../../compare/engine.js';
import { CompareLoop, type LoopCounters } from '../../proxy/compare-loop.js';
import {
  FramedSocket,
  type ChunkSink,
  type DisconnectInfo,
  type FramedSocketCounters,
} from '../../proxy/ports/framed-socket.js';
import { formatSocketAddress, type SocketAddress } from '../../proxy/ports/socket-address.js';
import { ColoMetrics } from '../stats/metrics.js';
import { startStatsServer, type ListenAddress, type StatsServer } from '../stats/server.js';
import { XenNotify, type XenNotifyCounters } from './xen-notify.js';

/** `colo-proxy compare`'s settings, named after QEMU's colo-compare properties. */
export interface CompareSettings {
  primaryIn: SocketAddress;
  secondaryIn: SocketAddress;
  outdev: SocketAddress;
  notifyDev: SocketAddress | null;
  compareTimeoutMs: number;
  expiredScanCycleMs: number;
  maxQueueSize: number;
  vnetHdr: boolean;
  metrics: ListenAddress | null;
}

/** What the drop-in's /stats adds to the metrics snapshot (docs/compare.md, "GET /stats"). */
export interface CompareStatus {
  sockets: Record<string, { address: string; connected: boolean } & FramedSocketCounters>;
  loop: LoopCounters;
  notify: XenNotifyCounters | null;
  engine: EngineStats;
  settings: { compareTimeoutMs: number; expiredScanCycleMs: number; maxQueueSize: number; vnetHdrSupport: boolean };
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
  close(): Promise<void>;
}

/**
 * Builds the drop-in: four framed sockets, the comparison engine, the loop between them, the Xen notify
 * endpoint and (with --metrics) the statistics server. Resolves once every socket is ready: listening
 * sockets bound, connecting ones connected.
 */
export async function startCompareService(settings: CompareSettings, logger: Logger): Promise<CompareService> {
  const engine = new CompareEngine({
    compareTimeoutMs: settings.compareTimeoutMs,
    expiredScanCycleMs: settings.expiredScanCycleMs,
    maxQueueSize: settings.maxQueueSize,
  });
  const metrics = new ColoMetrics();
  metrics.setMode('protected');
  let notify: XenNotify | null = null;
  const loop = new CompareLoop({
    engine,
    compareTimeoutMs: settings.compareTimeoutMs,
    expiredScanCycleMs: settings.expiredScanCycleMs,
    vnetHdr: settings.vnetHdr,
    notifier: settings.notifyDev === null ? null : { requestCheckpoint: () => notify?.requestCheckpoint() },
    logger,
    observer: metrics,
    afterScan: () => {
      const stats = engine.stats();
      metrics.setQueueDepth('primary', stats.heldPrimaryPackets);
      metrics.setQueueDepth('secondary', stats.heldSecondaryPackets);
      metrics.setHeld(stats.heldPrimaryPackets, stats.heldPrimaryBytes);
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
    watch(socket, logger);
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
    settings: {
      compareTimeoutMs: settings.compareTimeoutMs,
      expiredScanCycleMs: settings.expiredScanCycleMs,
      maxQueueSize: settings.maxQueueSize,
      vnetHdrSupport: settings.vnetHdr,
    },
  });

  const close = async (): Promise<void> => {
    loop.stop();
    await Promise.all(sockets.map((s) => s.close()));
    await stats?.close();
  };

  // Wired before any socket can accept a peer, so no frame can arrive before outdev is known.
  loop.start({ primary, secondary, outdev });
  try {
    await Promise.all(sockets.map((s) => s.start()));
    if (settings.metrics !== null) {
      stats = await startStatsServer({ ...settings.metrics, metrics, status });
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

/** Peer comings and goings are rare and worth a line each; frames never are. */
function watch(socket: FramedSocket, logger: Logger): void {
  socket.on('connect', (peer: string) => logger.info({ socket: socket.name, peer }, `${socket.name}: peer connected`));
  socket.on('disconnect', (info: DisconnectInfo) => {
    const level = info.reason === 'closed' || info.reason === 'shutdown' ? 'info' : 'warn';
    logger[level]({ socket: socket.name, ...info }, `${socket.name}: peer disconnected (${info.reason})`);
  });
  socket.on('socket-error', (err: Error) => logger.error({ socket: socket.name, err: err.message }, 'socket error'));
}
