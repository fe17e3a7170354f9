/**
 * Liveness on an extension-speaking control connection. One coarse interval timer does both jobs: it sends
 * a HEARTBEAT and checks how long the peer has been silent. Any received byte counts as a sign of life, so
 * a long state transfer is never mistaken for silence.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  /** Silence longer than this is a lost peer. Detection happens within one interval after it. */
  lossTimeoutMs: number;
  send(): void;
  /** When the peer was last heard from, on the `now` clock. */
  lastHeard(): number;
  onLoss(silentMs: number): void;
  now(): number;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: HeartbeatOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    // A heartbeat alone must not keep a process alive: the connection it watches does that.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  private tick(): void {
    this.options.send();
    // Timers run before the event loop polls for I/O: after this process stalled (GC, a busy neighbour),
    // the peer's bytes may sit unread. Judge silence only after the poll phase has delivered them.
    setImmediate(() => {
      if (!this.timer) return;
      const silent = this.options.now() - this.options.lastHeard();
      if (silent > this.options.lossTimeoutMs) {
        this.stop();
        this.options.onLoss(Math.round(silent));
      }
    });
  }
}
