import { once } from 'node:events';
import { Agent, type AgentOptions } from '../../src/checkpoint/agent.js';
import { Coordinator, type CoordinatorOptions } from '../../src/checkpoint/coordinator.js';
import type { ProtocolTimeouts } from '../../src/checkpoint/channel.js';
import { linkAgent, linkCoordinator, type Link } from '../../src/checkpoint/link.js';
import { parseEndpoint, formatEndpoint } from '../../src/checkpoint/transport.js';
import type { TlsMaterial } from '../../src/checkpoint/tls.js';
import { FakeDriver } from './fake-driver.js';

/**
 * Short bounds so faults show within a fraction of a second. Heartbeat loss is looser: on a loaded 2-core
 * machine one process hosting both peers can stall past 200 ms while copying a large state, which is
 * silence only from the stalled process's own point of view. Heartbeat tests tighten it (heartbeatTimeouts).
 */
export const fastTimeouts: ProtocolTimeouts = {
  waitMs: 200,
  transferMs: 400,
  loadMs: 300,
  heartbeatIntervalMs: 40,
  heartbeatLossMs: 1000,
};

export const heartbeatTimeouts: ProtocolTimeouts = { ...fastTimeouts, heartbeatLossMs: 200 };

export interface Pair {
  coordinator: Coordinator;
  agent: Agent;
  primary: FakeDriver;
  secondary: FakeDriver;
  links: Link[];
  close(): Promise<void>;
}

/** A coordinator and an agent on loopback TCP, the coordinator listening; resolves at 'ready'. */
export async function protectedPair(
  options: {
    coordinator?: Partial<CoordinatorOptions>;
    agent?: Partial<AgentOptions>;
    material?: TlsMaterial | null;
    agentListens?: boolean;
  } = {},
): Promise<Pair> {
  const primary = new FakeDriver(Buffer.from('primary state'));
  const secondary = new FakeDriver(Buffer.from('secondary state'));
  const coordinator = new Coordinator({
    driver: primary,
    timeouts: fastTimeouts,
    checkpointTimerMs: null,
    ...options.coordinator,
  });
  const agent = new Agent({ driver: secondary, timeouts: fastTimeouts, ...options.agent });
  const material = options.material ?? null;
  const ready = once(coordinator, 'ready');
  const links: Link[] = [];
  if (options.agentListens) {
    const listening = await linkAgent(agent, parseEndpoint('listen:127.0.0.1:0'), { material });
    links.push(listening);
    const dial = { ...listening.endpoint, mode: 'connect' as const };
    links.push(await linkCoordinator(coordinator, parseEndpoint(formatEndpoint(dial)), { material, retryMs: 20 }));
  } else {
    const listening = await linkCoordinator(coordinator, parseEndpoint('listen:127.0.0.1:0'), { material });
    links.push(listening);
    const dial = { ...listening.endpoint, mode: 'connect' as const };
    links.push(await linkAgent(agent, parseEndpoint(formatEndpoint(dial)), { material, retryMs: 20 }));
  }
  await withTimeout(ready, 3000, 'ready');
  return {
    coordinator,
    agent,
    primary,
    secondary,
    links,
    async close() {
      await coordinator.close();
      await agent.close();
      for (const link of links) await link.close();
    },
  };
}

// Real timers, captured before any test fakes them: a deadline must pass in real time (test/checkpoint/protocol-time.ts).
const { setTimeout: realSetTimeout, clearTimeout: realClearTimeout } = globalThis;

/** Awaits `promise`, failing the test with `what` after `ms` (real time) instead of hanging. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = realSetTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    realClearTimeout(timer);
  }
}
