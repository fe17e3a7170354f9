/**
 * Where the data plane sends frames: a live interface, a framed socket, or memory in tests.
 * A port is done with `frame` when send() returns (it copies whatever it queues): the mirror patches the
 * client's frame in place for the secondary right after the primary's port has sent it.
 */
export interface FramePort {
  /** Sends one frame whose Ethernet header starts at `start`; false when the port refused it (counted there). */
  send(frame: Buffer, start?: number): boolean;
  close(): void;
}

/** A FramePort that keeps what it is sent, for tests and the replay lab. */
export class MemoryPort implements FramePort {
  readonly sent: Buffer[] = [];
  closed = false;

  send(frame: Buffer, start = 0): boolean {
    if (this.closed) return false;
    // Copy: the data plane may patch a frame in place after sending it (the rewriter does).
    this.sent.push(Buffer.from(start === 0 ? frame : frame.subarray(start)));
    return true;
  }

  close(): void {
    this.closed = true;
  }
}
