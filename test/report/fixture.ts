import type { DivergenceReason, Protocol } from '../../compare/types.js';
import { defaultReplayOptions, summaryOptions } from '../../src/replay/options.js';
import type { ReplayCheckpoint, ReplayConnection, ReplayDivergence, ReplaySummary } from '../../src/replay/summary.js';
import type { DivergenceConnection, DivergenceWindow } from '../../src/stats/divergence-record.js';

/**
 * A hand-made replay summary, shaped like the replay lab's (src/replay/summary.ts): 12 s of traffic, six
 * connections of which four diverge, timer and divergence checkpoints, malformed frames, and strings that
 * carry markup so escaping is exercised. Deterministic: no randomness, no clock.
 */
export const hostileDetail = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">';
export const hostileFile = 'captures/"><svg onload=alert(1)>/primary.pcap';

export const firstFrameEpochMs = 1_764_115_200_000;

export function fixtureSummary(): ReplaySummary {
  const connections: ReplayConnection[] = [
    conn('tcp 10.0.0.1:80 > 10.0.0.2:40000', 'tcp', 18),
    conn('tcp 10.0.0.1:80 > 10.0.0.2:40001', 'tcp', 9),
    conn('tcp 10.0.0.1:443 > 10.0.0.3:51515', 'tcp', 4),
    conn('udp 10.0.0.1:53 > 10.0.0.9:33333', 'udp', 6),
    conn('icmp 10.0.0.1 > 10.0.0.2', 'icmp', 0),
    conn('tcp [fd00::1]:8080 > [fd00::2]:50000', 'tcp', 0),
  ];

  const divergences: ReplayDivergence[] = [];
  const reasons: DivergenceReason[] = ['payload', 'payload', 'length', 'payload', 'ack', 'flags', 'timeout'];
  let k = 0;
  for (const c of connections) {
    for (let i = 0; i < c.divergences; i++, k++) {
      const reason: DivergenceReason = c.protocol === 'udp' ? (i % 3 === 0 ? 'length' : 'payload') : reasons[k % 7];
      divergences.push({
        // Spread over 12 s with a burst around 4-5 s, as a nondeterministic reply stream would give.
        time: firstFrameEpochMs + Math.round(k < 20 ? 4000 + k * 53 : (k * 397) % 12000),
        connection: connectionOf(c.connection),
        reason,
        offset: reason === 'timeout' ? null : 200 + k * 17,
        detail: k === 3 ? hostileDetail : `${reason} differs at stream byte ${200 + k * 17}`,
        primaryLength: reason === 'timeout' ? 1514 : 600 + k,
        secondaryLength: reason === 'timeout' ? null : reason === 'length' ? 590 + k : 600 + k,
        window: reason === 'payload' ? payloadWindow(k) : null,
      });
    }
  }
  divergences.sort((a, b) => a.time - b.time);
  const firstPayload = divergences.findIndex((d) => d.reason === 'payload');
  divergences[firstPayload] = { ...divergences[firstPayload], window: frameStartWindow };

  const list: ReplayCheckpoint[] = [];
  const checkpointTimes: [number, DivergenceReason][] = [
    [1200, 'payload'],
    [4010, 'payload'],
    [4200, 'length'],
    [4600, 'payload'],
    [5100, 'ack'],
    [7300, 'flags'],
    [9000, 'timeout'],
    [10000, 'timer'],
    [11500, 'payload'],
  ];
  checkpointTimes.forEach(([t, reason], i) =>
    list.push({
      index: i + 1,
      reason,
      requestedAt: t,
      startedAt: t + 1,
      completedAt: t + 21,
      requests: 1 + (i % 3),
      released: 10 + i,
      dropped: 9 + i,
    }),
  );
  const byReason: Partial<Record<DivergenceReason, number>> = {};
  for (const c of list) byReason[c.reason] = (byReason[c.reason] ?? 0) + 1;
  const divergencesByReason: Partial<Record<DivergenceReason, number>> = {};
  const divergencesByProtocol: Partial<Record<Protocol, number>> = {};
  for (const d of divergences) {
    divergencesByReason[d.reason] = (divergencesByReason[d.reason] ?? 0) + 1;
    divergencesByProtocol[d.connection.protocol] = (divergencesByProtocol[d.connection.protocol] ?? 0) + 1;
  }

  return {
    schema: 'colo-proxy/replay-summary',
    version: 2,
    inputs: {
      primary: { file: hostileFile, format: 'pcap', interface: null, frames: 2412, bytes: 1_903_118 },
      secondary: { file: 'captures/secondary.pcapng', format: 'pcapng', interface: 1, frames: 2408, bytes: 1_899_002 },
    },
    options: summaryOptions(defaultReplayOptions),
    capture: { firstFrameEpochMs, lastFrameMs: 11_980, endMs: 12_020 },
    clock: { jumps: 0, jumpedMs: 0, largestJumpMs: 0, timersSkipped: 0 },
    frames: {
      primary: 2412,
      secondary: 2408,
      released: 2405,
      dropped: 2403,
      malformed: 7,
      heldAtEnd: 5,
      droppedBySide: { primary: 0, secondary: 2403 },
      heldAtEndBySide: { primary: 3, secondary: 2 },
      outOfOrder: 1,
    },
    malformed: { byReason: { 'truncated-tcp': 4, 'bad-ipv4-ihl': 2, empty: 1 }, bySide: { primary: 4, secondary: 3 } },
    checkpoints: { total: list.length, byReason, list },
    divergences,
    divergencesByReason,
    divergencesByProtocol,
    connections,
    compareLatencyMs: { count: 2405, p50: 0.42, p99: 18.5, max: 3012 },
    readErrors: [],
  };
}

/** "tcp 10.0.0.1:80 > 10.0.0.2:40000", "icmp 10.0.0.1 > 10.0.0.2", "tcp [fd00::1]:8080 > ...": as an object. */
function connectionOf(name: string): DivergenceConnection {
  const [protocol, from, , to] = name.split(' ');
  const endpoint = (text: string): [string, number] => {
    const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(text.startsWith('[') ? text : text.replace(/:(\d+)$/, ']:$1'))!;
    return [m[1], Number(m[2] ?? 0)];
  };
  const [src, srcPort] = endpoint(from);
  const [dst, dstPort] = endpoint(to);
  return { protocol: protocol as Protocol, src, srcPort, dst, dstPort };
}

/** A payload divergence's window mid-frame: the differing byte (the k-th letter) at frame offset 86. */
function payloadWindow(k: number): DivergenceWindow {
  const before = Buffer.from('HTTP/1.1 200 OK\r').toString('hex');
  const after = Buffer.from('\nDate: Mon, 1 Dec').toString('hex');
  const letter = (c: number) => Buffer.from([c]).toString('hex');
  return {
    primary: { offset: 70, at: 86, hex: before + letter(0x41 + (k % 26)) + after },
    secondary: { offset: 70, at: 86, hex: before + letter(0x61 + (k % 26)) + after },
  };
}

/** The first divergence differs in the frame's first byte (the destination MAC): no bytes before it. */
export const frameStartWindow: DivergenceWindow = {
  primary: { offset: 0, at: 0, hex: '02000000000102000000000208004500003c' },
  secondary: { offset: 0, at: 0, hex: '12000000000102000000000208004500003c' },
};

function conn(connection: string, protocol: Protocol, divergences: number): ReplayConnection {
  return { connection, protocol, primary: 400, secondary: 400, released: 399, dropped: 398, divergences };
}

/** The summary of a replay where the two sides matched: no divergences, no checkpoints but the timer's. */
export function quietSummary(): ReplaySummary {
  const s = fixtureSummary();
  return {
    ...s,
    divergences: [],
    divergencesByReason: {},
    divergencesByProtocol: {},
    checkpoints: { total: 0, byReason: {}, list: [] },
    connections: s.connections.map((c) => ({ ...c, divergences: 0 })),
    readErrors: [
      {
        side: 'secondary',
        file: 'captures/<b>secondary</b>.pcap',
        code: 'record-beyond-file',
        offset: 4096,
        message: 'record length 1514 runs past the end of the file',
        framesBefore: 42,
      },
    ],
  };
}
