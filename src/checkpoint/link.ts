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
  /** The longest wait for one connection attempt (timeouts.connectMs; default 3000). */
  connectTimeoutMs?: number;
  /** Listening under TLS: the longest handshake before the connection is closed (timeouts.handshakeMs; default 10000). */
  handshakeMs?: number;
  /** First retry delay; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

/** The connection timeouts of a checkpoint config (`timeouts` in docs/configuration.md) that a link uses. */
export interface LinkTimeouts {
  connectMs: number;
  handshakeMs: number;
  retryMs: number;
  maxRetryMs: number;
}

/** A link's options from the config's timeouts, its TLS material (null: plaintext) and the logger. */
export function linkOptions(timeouts: LinkTimeouts, material: TlsMaterial | null, logger: Logger): LinkOptions {
  return {
    material,
    logger,
    connectTimeoutMs: timeouts.connectMs,
    handshakeMs: timeouts.handshakeMs,
    retryMs: timeouts.retryMs,
    maxRetryMs: timeouts.maxRetryMs,
  };
}

/** Attaches every accepted or dialled connection to the coordinator; a new one while attached is refused. */
export async function linkCoordinator(
  coordinator: Coordinator,
  endpoint: Endpoint,
  options: LinkOptions,
): Promise<Link> {
  const logger = (options.logger ?? silentLogger).child({ role: 'coordinator-link' });
  if (endpoint.mode === 'listen') {
    const listener = await listenControl(endpoint, options.material, options);
    listener.on('connection', (stream, peer) => coordinator.attach(stream, peer));
    listener.on('refused', (error, peer) => logger.warn({ peer, err: error.message }, 'secondary refused'));
    logger.info({ endpoint: formatEndpoint(listener.address) }, 'waiting for the secondary');
    return { endpoint: listener.address, close: () => listener.close() };
  }
  return dialLoop(endpoint, options, logger, 'secondary', async (stream, peer) => {
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
    const listener: ControlListener = await listenControl(endpoint, options.material, options);
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
  return dialLoop(endpoint, options, logger, 'primary', async (stream, peer) => {
    const end = await agent.serve(stream, peer);
    options.onEnd?.(end);
    return end.kind === 'primary-lost' ? 'stop' : undefined;
  });
}

/** While the backoff is at its longest, one line per this many ms says the dialler is still waiting. */
const QUIET_LOG_MS = 30_000;

/**
 * Dials until the link is closed; `session` serves each connection to its end ('stop' ends the loop). A
 * refused or timed-out attempt is retried after a backoff doubling from retryMs to maxRetryMs. Each attempt
 * is logged while the backoff grows, then one line per QUIET_LOG_MS; the retry timer holds the process up,
 * so a command waiting for its peer keeps waiting (its own limit, if any, is its caller's to enforce).
 */
function dialLoop(
  endpoint: Endpoint,
  options: LinkOptions,
  logger: Logger,
  peerRole: 'primary' | 'secondary',
  session: (stream: Duplex, peer: string) => Promise<'stop' | void>,
): Link {
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let wake: (() => void) | null = null;
  const aborter = new AbortController();
  // A session may wait on its peer indefinitely (the coordinator's ends with 'secondary-lost', which a closing
  // coordinator does not emit): closing the link ends the wait.
  const closing = new Promise<'stop'>((resolve) => aborter.signal.addEventListener('abort', () => resolve('stop')));
  const retryMs = options.retryMs ?? 100;
  const maxRetryMs = options.maxRetryMs ?? 2000;
  const peer = formatEndpoint(endpoint);
  const loop = async (): Promise<void> => {
    let delay = retryMs;
    let attempts = 0;
    let loggedAt = -Infinity;
    let loggedDelay = 0;
    while (!closed) {
      attempts += 1;
      try {
        const stream = await connectControl(
          endpoint,
          options.material,
          options.connectTimeoutMs ?? 3000,
          aborter.signal,
        );
        if (attempts > 1) logger.info({ peer, attempts }, `connected to the ${peerRole}`);
        delay = retryMs;
        attempts = 0;
        loggedAt = -Infinity;
        loggedDelay = 0;
        if ((await Promise.race([session(stream, peer), closing])) === 'stop') return;
      } catch (err) {
        if (closed) return;
        const now = performance.now();
        if (delay !== loggedDelay || now - loggedAt >= QUIET_LOG_MS) {
          loggedAt = now;
          loggedDelay = delay;
          logger.warn(
            { peer, attempt: attempts, err: (err as Error).message, retryInMs: delay },
            `waiting for the ${peerRole}: connection attempt failed, retrying`,
          );
        }
        const waited = delay;
        delay = Math.min(delay * 2, maxRetryMs);
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, waited);
        });
        continue;
      }
      if (closed) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, delay);
      });
    }
  };
  const running = loop();
  return {
    endpoint,
    close: async () => {
      closed = true;
      aborter.abort();
      if (timer) clearTimeout(timer);
      wake?.();
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 50))]);
    },
  };
}
