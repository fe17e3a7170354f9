/**
 * The replay's optional model of what checkpoint pauses cost the guests (ReplayOptions.guestBusyShare;
 * docs/replay.md, "Protection modes"). A capture records when each frame left a guest that was never
 * paused; in the replay each checkpoint pauses both guests for its duration, so the work behind later
 * frames runs late. The lag grows by each pause and shrinks as the guests catch up in their idle time:
 * a guest busy a share `b` of the time works off (1 - b) ms of backlog per ms of capture. Past a paused
 * share of 1 - b the lag grows without bound: the crowded-checkpoint collapse hybrid mode exists for.
 */
export class GuestLag {
  private lag = 0;
  /** Pauses since the last frame's capture time: felt from the next later capture time on. */
  private pending = 0;
  private lastCapture = 0;

  constructor(private readonly busyShare: number) {
    if (!(busyShare >= 0 && busyShare < 1)) {
      throw new RangeError(`guestBusyShare: expected a number in [0, 1), received ${busyShare}`);
    }
  }

  /**
   * The replay time of a frame captured at `capture` (ms, capture times non-decreasing). Frames of one
   * capture instant share one lag: the two guests' copies of a reply must stay together.
   */
  frameAt(capture: number): number {
    if (capture > this.lastCapture) {
      const gap = capture - this.lastCapture;
      this.lastCapture = capture;
      this.lag = Math.max(0, this.lag + this.pending - (1 - this.busyShare) * gap);
      this.pending = 0;
    }
    return capture + this.lag;
  }

  /** Both guests paused for a checkpoint of `ms`. */
  paused(ms: number): void {
    this.pending += ms;
  }
}
