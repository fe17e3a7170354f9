/**
 * The soak (`npm run soak`, test/bench/soak-short.test.ts): the inline proxy (`colo-proxy run`) in network
 * namespaces between a client and two lab guests (test/support/inline-lab.ts), for a bounded time, with
 * timer checkpoints, a secondary whose replies differ (every differing reply is a divergence and a
 * checkpoint), and the secondary's agent killed and restarted again and again (solo, then re-seeded).
 * The client downloads and runs requests throughout, and checks every byte it receives.
 */
import { readFileSync } from 'node:fs';
import type { InlineCounters } from '../../proxy/inline.js';
import { InlineLab } from '../../test/support/inline-lab.js';
import type { LabProcess } from '../../test/support/lab-process.js';
import { createInlineTopology, type InlineTopology } from '../../test/support/netns.js';

export interface SoakOptions {
  seconds: number;
  /** Seconds between agent kills (the first after one interval); 0 never kills it. */
  faultEverySeconds?: number;
  checkpointTimerMs?: number;
  /** The lab's subnet (10.N.0.0/24) and namespace tag: distinct per concurrent run. */
  subnet?: number;
  /** Bytes per download. */
  downloadBytes?: number;
  /** Keep the lab's directory (logs, events) even when everything passed. */
  keep?: boolean;
}

export interface SoakResult {
  seconds: number;
  /** Frames the proxy received on its three interfaces (from its /stats). */
  frames: number;
  /** Lab processes (proxy, guests, a running agent) that died unasked, and clients that failed. */
  crashes: number;
  /** Waits that ran out: a client past its timeout, solo or protection not reached in time. */
  hangs: number;
  /** Frames received minus every fate the proxy counts (see frameFates); null when it reports none. */
  unaccounted: number | null;
  peak_rss_mb: number;
  /** [seconds since start, proxy RSS MiB] every few seconds. */
  rss_mb: Array<[number, number]>;
  /** Client bytes checked against what the guest must have sent (downloads and request replies). */
  bytes_verified: number;
  /** Client bytes that did not match (a download byte or a reply). */
  bytes_mismatched: number;
  downloads: number;
  request_rounds: number;
  checkpoints: number;
  divergences: number;
  agent_kills: number;
  reprotections: number;
  proxy_exit: number | null;
  /** The lab directory when kept (a failure, or `keep`). */
  lab_dir: string | null;
  problems: string[];
}

interface Download {
  bytes: number;
  expected: number;
  firstMismatch: number | null;
}
interface Replies {
  replies: { request: string; reply: string }[];
}

const CLIENT_TIMEOUT_MS = 60_000;

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const topo = await createInlineTopology(options.subnet ?? 83);
  try {
    return await new Soak(topo, options).run();
  } finally {
    await topo.destroy();
  }
}

class Soak {
  private readonly lab: InlineLab;
  private readonly result: SoakResult;
  private readonly started = Date.now();
  private deadline = 0;
  private stopping = false;

  constructor(
    topo: InlineTopology,
    private readonly options: SoakOptions,
  ) {
    this.lab = new InlineLab(topo, {
      nondeterministic: true,
      checkpointTimerMs: options.checkpointTimerMs ?? 1000,
      waitMs: 1500,
      heartbeatLossMs: 1500,
    });
    this.result = {
      seconds: options.seconds,
      frames: 0,
      crashes: 0,
      hangs: 0,
      unaccounted: null,
      peak_rss_mb: 0,
      rss_mb: [],
      bytes_verified: 0,
      bytes_mismatched: 0,
      downloads: 0,
      request_rounds: 0,
      checkpoints: 0,
      divergences: 0,
      agent_kills: 0,
      reprotections: 0,
      proxy_exit: null,
      lab_dir: null,
      problems: [],
    };
  }

  async run(): Promise<SoakResult> {
    const lab = this.lab;
    let failed = false;
    try {
      await lab.start();
      this.deadline = Date.now() + this.options.seconds * 1000;
      await Promise.all([this.downloads(), this.requests(), this.faults(), this.sampleRss()]);
      await this.collect();
    } catch (err) {
      failed = true;
      this.problem(`soak stopped: ${(err as Error).message}`);
    } finally {
      this.stopping = true;
      const proxy = lab.proxy as LabProcess | undefined;
      await lab.stop(true);
      this.result.proxy_exit = proxy ? await proxy.exited : null;
      failed ||= this.result.crashes + this.result.hangs + this.result.bytes_mismatched > 0;
      if (failed || this.options.keep) this.result.lab_dir = lab.dir;
      else await lab.stop(false);
    }
    return this.result;
  }

  private get running(): boolean {
    return !this.stopping && Date.now() < this.deadline;
  }

  private async downloads(): Promise<void> {
    const bytes = this.options.downloadBytes ?? 8 << 20;
    while (this.running) {
      const client = this.lab.client({ kind: 'download', bytes, timeoutMs: CLIENT_TIMEOUT_MS }, 'client-download');
      const result = await this.clientResult<Download>(client);
      if (result === null) continue;
      this.result.downloads++;
      const good = result.firstMismatch === null ? result.bytes : result.firstMismatch;
      this.result.bytes_verified += good;
      if (result.bytes !== result.expected || result.firstMismatch !== null) {
        this.result.bytes_mismatched += result.expected - good;
        this.problem(
          `download: ${result.bytes} of ${result.expected} bytes, first mismatch at ${result.firstMismatch}`,
        );
      }
    }
  }

  /** SET then GET of values that grow each round, and a counter: every reply is known in advance. */
  private async requests(): Promise<void> {
    let round = 0;
    while (this.running) {
      round++;
      const value = `v${round}-${'y'.repeat(round % 200)}`;
      const connections = [[`SET soak${round} ${value}`, `GET soak${round}`, `INCR soakcount`, 'PING']];
      const client = this.lab.client(
        { kind: 'requests', connections, timeoutMs: CLIENT_TIMEOUT_MS },
        'client-requests',
      );
      const result = await this.clientResult<Replies>(client);
      if (result === null) continue;
      this.result.request_rounds++;
      const expected = ['OK', value, String(round), 'PONG'];
      result.replies.forEach((r, i) => {
        if (r.reply === expected[i]) this.result.bytes_verified += r.reply.length + 1;
        else {
          this.result.bytes_mismatched += (expected[i] ?? '').length + 1;
          this.problem(`request ${r.request}: expected ${expected[i]}, got ${r.reply}`);
        }
      });
    }
  }

  private async clientResult<T>(client: LabProcess): Promise<T | null> {
    try {
      return await this.lab.clientResult<T>(client, CLIENT_TIMEOUT_MS + 5000);
    } catch (err) {
      const message = (err as Error).message;
      if (/timed out/.test(message)) this.result.hangs++;
      else this.result.crashes++;
      // Where each guest stands, to tell a stalled guest from a stalled path.
      const status = await Promise.all([
        this.lab.control('primary', 'STATUS'),
        this.lab.control('secondary', 'STATUS'),
      ]).catch((e: Error) => e.message);
      this.problem(`${client.name}: ${message.split('\n')[0]} (guests: ${JSON.stringify(status)})`);
      return null;
    }
  }

  /** Kills the agent every interval, waits for solo, restarts it and waits for protection again. */
  private async faults(): Promise<void> {
    const every = (this.options.faultEverySeconds ?? Math.max(5, this.options.seconds / 4)) * 1000;
    if (every <= 0) return;
    const lab = this.lab;
    for (let next = Date.now() + every; ; next += every) {
      await this.sleepUntil(next);
      if (!this.running) return;
      const mark = lab.proxy.events.length;
      lab.agent.signal('SIGKILL');
      this.result.agent_kills++;
      try {
        await lab.proxy.waitForNext(mark, (e) => e.event === 'mode' && e.mode === 'solo', 10_000, 'solo mode');
        const back = lab.proxy.events.length;
        await lab.startAgent();
        await lab.proxy.waitForNext(back, (e) => e.event === 'mode' && e.mode === 'protected', 30_000, 'protection');
        this.result.reprotections++;
      } catch (err) {
        this.result.hangs++;
        this.problem(`agent fault: ${(err as Error).message.split('\n')[0]}`);
        return;
      }
    }
  }

  private async sampleRss(): Promise<void> {
    const every = Math.max(1000, (this.options.seconds * 1000) / 12);
    while (this.running) {
      const mb = this.proxyRss('VmRSS');
      if (mb !== null) this.result.rss_mb.push([Math.round((Date.now() - this.started) / 1000), mb]);
      this.checkAlive();
      await this.sleepUntil(Math.min(this.deadline, Date.now() + every));
    }
    this.checkAlive();
  }

  /** A proxy or guest that exited before the end is a crash (the agent is killed on purpose: not counted). */
  private checkAlive(): void {
    const lab = this.lab;
    for (const proc of [lab.proxy, lab.primaryGuest, lab.secondaryGuest]) {
      if (!proc.running && !(proc as { counted?: boolean }).counted) {
        (proc as { counted?: boolean }).counted = true;
        this.result.crashes++;
        this.problem(`${proc.name} exited during the soak (${String(proc.child.exitCode ?? proc.child.signalCode)})`);
      }
    }
  }

  /** The proxy's own counters and peak RSS, read once the load has stopped. */
  private async collect(): Promise<void> {
    const lab = this.lab;
    this.result.peak_rss_mb = this.proxyRss('VmHWM') ?? 0;
    const stats = JSON.parse(await lab.stats('/stats')) as Record<string, unknown>;
    const fates = frameFates(stats);
    this.result.frames = fates.received;
    this.result.unaccounted = fates.unaccounted;
    this.result.checkpoints = lab.proxyEvents('checkpoint').length;
    this.result.divergences = lab.proxyEvents('divergence').length;
    if (process.env.SOAK_DUMP_STATS === '1') process.stderr.write(`${JSON.stringify(stats)}\n`);
  }

  /** RSS (or peak RSS) of the proxy process, MiB: `ip netns exec` execs node, so the pid is the proxy's. */
  private proxyRss(field: 'VmRSS' | 'VmHWM'): number | null {
    const pid = this.lab.proxy.child.pid;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
      return Number.isFinite(kb) ? Math.round(kb / 1024) : null;
    } catch {
      return null;
    }
  }

  private async sleepUntil(time: number): Promise<void> {
    while (!this.stopping && Date.now() < Math.min(time, this.deadline)) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.min(time, this.deadline) - Date.now())));
    }
  }

  private problem(text: string): void {
    if (this.result.problems.length < 20) this.result.problems.push(text);
  }
}

/** What the soak reads of `/stats`' `inline` section (InlineProxy.status()). */
interface InlineStatus {
  counters: Pick<
    InlineCounters,
    | 'framesIn'
    | 'passedThrough'
    | 'released'
    | 'secondaryDropped'
    | 'secondaryUnprotected'
    | 'secondaryBeforeFlush'
    | 'primaryAfterFailover'
    | 'failoverReleased'
    | 'malformed'
  >;
  gate: { passed: number; held: number; flushed: number; heldFrames: number };
  mirror: { droppedForIsn: number };
  rewriter: { heldOverflow: number; heldSecondary: number };
  engine: { heldPrimaryPackets: number; heldSecondaryPackets: number };
}

/**
 * Frames in on all three interfaces, and the VMs' frames without a counted fate (the fates the inline
 * proxy's property test checks, test/proxy/inline-fates.property.test.ts): a primary frame is passed
 * through, released, sent after failover, malformed or held; a secondary frame is dropped as a compared copy,
 * discarded while unprotected or before a flush, released at failover, malformed, held, dropped at the
 * rewriter's bound, or held (at most heldSecondary) for the primary's ISN. Plus the gate: what entered it
 * was sent or is held.
 */
function frameFates(stats: Record<string, unknown>): { received: number; unaccounted: number | null } {
  const inline = stats.inline as InlineStatus | undefined;
  if (!inline) return { received: 0, unaccounted: null };
  const { counters: c, gate: g, mirror: m, rewriter: r, engine: e } = inline;
  const vmIn = c.framesIn.primary + c.framesIn.secondary;
  const fated =
    c.passedThrough +
    c.released +
    c.primaryAfterFailover +
    e.heldPrimaryPackets +
    c.secondaryDropped +
    c.secondaryUnprotected +
    c.secondaryBeforeFlush +
    c.failoverReleased +
    e.heldSecondaryPackets +
    (r.heldOverflow - m.droppedForIsn) +
    c.malformed;
  const gap = vmIn - fated;
  const vmUnaccounted = gap < 0 ? -gap : Math.max(0, gap - r.heldSecondary);
  const gateUnaccounted =
    Math.abs(g.passed + g.held - (c.passedThrough + c.released + c.failoverReleased)) +
    Math.abs(g.held - (g.flushed + g.heldFrames));
  return { received: vmIn + c.framesIn.client, unaccounted: vmUnaccounted + gateUnaccounted };
}
