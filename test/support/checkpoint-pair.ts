import { once } from 'node:events';
import { Agent } from '../../src/checkpoint/agent.js';
import { Coordinator } from '../../src/checkpoint/coordinator.js';
import type { VmDriver } from '../../src/checkpoint/driver.js';
import { createDriver } from '../../src/checkpoint/drivers/index.js';
import { linkAgent, linkCoordinator } from '../../src/checkpoint/link.js';
import type { Endpoint } from '../../src/checkpoint/transport.js';
import { checkpointEndpoint, type CheckpointConfig } from '../../src/config/checkpoint.js';
import { withTimeout } from '../checkpoint/harness.js';

export interface ProtectedPair {
  coordinator: Coordinator;
  agent: Agent;
  primaryDriver: VmDriver;
  secondaryDriver: VmDriver;
}

/**
 * A coordinator and an agent built from their configs the way the commands build them (createDriver, then
 * the link; plaintext): the coordinator listens on the primary's endpoint, the agent dials what
 * `secondary(listening)` names (the bound endpoint, with the real port when 0 was asked). Resolves once the
 * seeding checkpoint is done and the pair is protected; `cleanups` gets what closes all of it, even when it
 * never got there.
 */
export async function protectPair(
  primary: CheckpointConfig,
  secondary: (listening: Endpoint) => CheckpointConfig,
  cleanups: Array<() => unknown>,
  readyMs = 10_000,
): Promise<ProtectedPair> {
  const primaryDriver = createDriver(primary.driver, 'primary');
  const coordinator = new Coordinator({ driver: primaryDriver, timeouts: primary.timeouts, checkpointTimerMs: null });
  const ready = once(coordinator, 'ready');
  const listening = await linkCoordinator(coordinator, checkpointEndpoint(primary), { material: null });
  const secondaryConfig = secondary(listening.endpoint);
  const secondaryDriver = createDriver(secondaryConfig.driver, 'secondary');
  const agent = new Agent({ driver: secondaryDriver, timeouts: secondaryConfig.timeouts });
  const dialling = await linkAgent(agent, checkpointEndpoint(secondaryConfig), { material: null, retryMs: 20 });
  cleanups.push(async () => {
    await coordinator.close();
    await agent.close();
    await listening.close();
    await dialling.close();
    await primaryDriver.close?.();
    await secondaryDriver.close?.();
  });
  await withTimeout(ready, readyMs, 'the pair to be protected');
  return { coordinator, agent, primaryDriver, secondaryDriver };
}
