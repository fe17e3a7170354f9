import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../log.js';
import type { Agent, AgentEnd } from './agent.js';
import type { Coordinator } from './coordinator.js';
import { connectControl, formatEndpoint, listenControl, type ControlListener, type Endpoint } from './transport.js';
import type { TlsMaterial } from './tls.js';

/**
 * Keeps a control connection up, whichever side listens: re-protection is automatic. A listening side takes
 * the next connection once the last one failed; a dialling side dials again, with backoff.
 */
export interface Link {
  /** The bound endpoint when listening (with the real port when 0 was asked), else the dialled one. */
  readonly endpoint: Endpoint;
  close(): Promise<void>;
}

export interface LinkOptions {
  material: TlsMaterial | null;
  logger?: Logger;
  connectTimeoutMs?: number;
  /** First retry delay; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

/** Attaches every accepted or dialled connection to the coordinator; a new one while attached is refused. */
export async function linkCoordinator(
  coordinator: Coordinator,
  endpoint: Endpoint,
  options: LinkOptions,
): Promise<Link> {
  const logger = (options.logger ?? silentLogger).child({ role: 'coordinator-link' });
  if (endpoint.mode === 'listen') {
    const listener = await listenControl(endpoint, options.material);
    listener.on('connection', (stream, peer) => coordinator.attach(stream, peer));
    listener.on('refused', (error, peer) => logger.warn({ peer, err: error.message }, 'secondary refused'));
    logger.info({ endpoint: formatEndpoint(listener.address) }, 'waiting for the secondary');
    return { endpoint: listener.address, close: () => listener.close() };
  }
  return dialLoop(endpoint, options, logger, async (stream, peer) => {
    if (!coordinator.attach(stream, peer)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        coordinator.off('secondary-lost', done);
        resolve();
      };
      coordinator.on('secondary-lost', done);
    });
  });
}

/**
 * Serves connections with the agent until the primary is lost (then stops: the caller fails over) or the
 * link is closed. `onEnd` sees how each connection ended.
 */
export async function linkAgent(
  agent: Agent,
  endpoint: Endpoint,
  options: LinkOptions & { onEnd?: (end: AgentEnd) => void },
): Promise<Link> {
  const logger = (options.logger ?? silentLogger).child({ role: 'agent-link' });
  if (endpoint.mode === 'listen') {
    const listener: ControlListener = await listenControl(endpoint, options.material);
    listener.on('connection', (stream, peer) => {
      if (agent.busy) {
        logger.warn({ peer }, 'refusing a second primary connection while one is served');
        stream.destroy();
        return;
      }
      void agent.serve(stream, peer).then((end) => {
        options.onEnd?.(end);
        if (end.kind === 'primary-lost') void listener.close();
      });
    });
    listener.on('refused', (error, peer) => logger.warn({ peer, err: error.message }, 'primary refused'));
    logger.info({ endpoint: formatEndpoint(listener.address) }, 'waiting for the primary');
    return { endpoint: listener.address, close: () => listener.close() };
  }
  return dialLoop(endpoint, options, logger, async (stream, peer) => {
    const end = await agent.serve(stream, peer);
    options.onEnd?.(end);
    return end.kind === 'primary-lost' ? 'stop' : undefined;
  });
}

function dialLoop(
  endpoint: Endpoint,
  options: LinkOptions,
  logger: Logger,
  session: (stream: Duplex, peer: string) => Promise<'stop' | void>,
): Link {
  let closed = false;
  let wake: (() => void) | null = null;
  const retryMs = options.retryMs ?? 100;
  const maxRetryMs = options.maxRetryMs ?? 2000;
  const peer = formatEndpoint(endpoint);
  const loop = async (): Promise<void> => {
    let delay = retryMs;
    while (!closed) {
      try {
        const stream = await connectControl(endpoint, options.material, options.connectTimeoutMs ?? 3000);
        delay = retryMs;
        if ((await session(stream, peer)) === 'stop') return;
      } catch (err) {
        logger.warn({ peer, err: (err as Error).message, retryInMs: delay }, 'control connection failed');
        delay = Math.min(delay * 2, maxRetryMs);
      }
      if (closed) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, delay).unref();
      });
    }
  };
  const running = loop();
  return {
    endpoint,
    close: async () => {
      closed = true;
      wake?.();
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 50))]);
    },
  };
}
