/**
 * The agent campaign: a raw "primary" on a loopback socket sends the checkpoint agent (src/checkpoint/agent.ts)
 * garbage: u64 words drawn from the sync points, HELLO/ERROR with odd arguments, SEND with bad lengths
 * (0, past the state bound, 2^63, 2^64-1) and short states, random words and cut words, then closes after
 * a random pause. The agent must end the connection (ERROR or close) within the bound after that close;
 * a serve() still running then is a hang, a rejected serve() a crash.
 */
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Agent } from '../../src/checkpoint/agent.js';
import type { VmDriver } from '../../src/checkpoint/driver.js';
import { SyncPoint } from '../../src/checkpoint/syncpoint.js';
import { Rng } from './rng.js';

export interface AgentCampaignOptions {
  inputs: number;
  seed: number;
  /** Wall time (ms) the agent may take to end its connection after the primary closed it. */
  boundMs?: number;
}

export interface AgentFailure {
  seed: number;
  index: number;
  extensions: boolean;
  /** The bytes the primary sent, hex. */
  input: string;
  kind: 'hang' | 'crash';
  error: string;
}

export interface AgentReport {
  inputs: number;
  crashes: number;
  hangs: number;
  /** How the agent's serve() ended, by kind; and inputs it answered with ERROR before closing. */
  ends: Record<string, number>;
  errorsSent: number;
  failures: AgentFailure[];
}

const MAX_STATE_BYTES = 64 * 1024;
const TIMEOUTS = { waitMs: 150, transferMs: 300, loadMs: 300, heartbeatIntervalMs: 50, heartbeatLossMs: 250 };
const SYNC_VALUES = Object.values(SyncPoint);

/** A VM whose state is a few bytes: every hook succeeds at once. */
class NullDriver implements VmDriver {
  readonly kind = 'null';
  async suspend(): Promise<void> {}
  async save(): Promise<Buffer> {
    return Buffer.from('state');
  }
  async load(): Promise<void> {}
  async resume(): Promise<void> {}
}

export async function runAgentCampaign(options: AgentCampaignOptions): Promise<AgentReport> {
  const rng = new Rng(options.seed ^ 0x00a9_e475);
  const boundMs = options.boundMs ?? 5000;
  const report: AgentReport = { inputs: 0, crashes: 0, hangs: 0, ends: {}, errorsSent: 0, failures: [] };
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  try {
    for (let index = 0; index < options.inputs; index++) {
      await runOne(rng, server, port, index, boundMs, options.seed, report);
    }
  } finally {
    server.close();
  }
  return report;
}

async function runOne(
  rng: Rng,
  server: Server,
  port: number,
  index: number,
  boundMs: number,
  seed: number,
  report: AgentReport,
): Promise<void> {
  const extensions = rng.chance(0.6);
  const input = garbage(rng);
  const pauseMs = rng.below(250);
  const agent = new Agent({ driver: new NullDriver(), timeouts: TIMEOUTS, maxStateBytes: MAX_STATE_BYTES, extensions });
  report.inputs++;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const stream = connect(port, '127.0.0.1');
  await once(stream, 'connect');
  const [peer] = await accepted;
  const received: Buffer[] = [];
  peer.on('data', (chunk: Buffer) => received.push(chunk));
  peer.on('error', () => {});
  // An object, so the type checker does not narrow it to its first value across the awaits.
  const outcome: { settled: 'pending' | 'done' | 'crash'; error: string } = { settled: 'pending', error: '' };
  const served = agent.serve(stream).then(
    (end) => {
      outcome.settled = 'done';
      report.ends[end.kind] = (report.ends[end.kind] ?? 0) + 1;
    },
    (err: unknown) => {
      outcome.settled = 'crash';
      outcome.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    },
  );
  peer.write(input);
  await delay(pauseMs, served);
  peer.end();
  peer.destroySoon();
  await delay(boundMs, served);
  // What the agent wrote before closing arrives after serve() settles: read it once the socket is closed.
  await delay(boundMs, peer.closed ? null : once(peer, 'close'));
  const sent = Buffer.concat(received);
  if (sentError(sent)) report.errorsSent++;
  const record = (kind: 'hang' | 'crash', why: string): void => {
    if (report.failures.length < 20) {
      report.failures.push({ seed, index, extensions, input: input.toString('hex'), kind, error: why });
    }
  };
  if (outcome.settled === 'crash') {
    report.crashes++;
    record('crash', outcome.error);
  } else if (outcome.settled === 'pending') {
    report.hangs++;
    record('hang', `serve() still running ${boundMs} ms after the primary closed`);
  }
  await agent.close();
  stream.destroy();
  peer.destroy();
  await Promise.race([served, delay(boundMs, null)]);
}

/** Resolves after `ms`, or as soon as `early` settles. */
function delay(ms: number, early: Promise<unknown> | null): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    early?.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Whether the agent wrote an ERROR word at a word boundary. */
function sentError(sent: Buffer): boolean {
  for (let at = 0; at + 8 <= sent.length; at += 8) {
    if (sent.readBigUInt64BE(at) === BigInt(SyncPoint.ERROR)) return true;
  }
  return false;
}

function word(value: bigint | number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

/** 1 to 24 words, each a sync point, a hostile argument or noise; sometimes a cut word at the end. */
function garbage(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  // Often a plausible opening, so the garbage reaches the states past the handshake.
  if (rng.chance(0.5)) parts.push(word(SyncPoint.HELLO), word(rng.pick([1, 0, 2, 0xffffffff])));
  if (rng.chance(0.4)) parts.push(word(SyncPoint.NEW));
  const count = rng.between(1, 24);
  for (let i = 0; i < count; i++) {
    switch (rng.below(8)) {
      case 0:
      case 1:
      case 2:
        parts.push(word(rng.pick(SYNC_VALUES)));
        break;
      case 3: {
        const length = rng.pick([
          0n,
          1n,
          5n,
          BigInt(MAX_STATE_BYTES + 1),
          2n ** 63n,
          2n ** 64n - 1n,
          BigInt(rng.u32()),
        ]);
        parts.push(word(SyncPoint.SEND), word(length));
        if (length < 64n && rng.chance(0.7)) parts.push(rng.bytes(rng.below(Number(length) + 2)));
        break;
      }
      case 4:
        parts.push(
          word(rng.pick([SyncPoint.HELLO, SyncPoint.ERROR])),
          word(BigInt(rng.u32()) << BigInt(rng.below(33))),
        );
        break;
      case 5:
        parts.push(word((BigInt(rng.u32()) << 32n) | BigInt(rng.u32())));
        break;
      case 6:
        parts.push(word(rng.pick([0, 0x45, 0x4c, 0xff, 0x104, 0x1_0000_0046])));
        break;
      default:
        parts.push(rng.bytes(rng.between(1, 7)));
    }
  }
  return Buffer.concat(parts);
}
