/**
 * A port is where the data plane meets the outside: a live interface (proxy/ports/live.ts, ring.ts), a
 * framed socket (proxy/ports/framed-socket.ts), or memory in tests. It sends what FramePort.send() is given
 * and hands what it receives to a FrameSink.
 */

/**
 * Why a port turned an incoming frame away. The framed codec (proxy/ports/framed.ts) gives all four; a live
 * interface gives 'truncated', for a frame longer than its capture slot.
 */
export type FramingRejectReason = 'zero-length' | 'oversized' | 'vnet-length' | 'truncated';

/** Where a port delivers what it receives. Implementations are long-lived objects, not per-frame closures. */
export interface FrameSink {
  /**
   * One whole frame: `frame` is exactly the received bytes (from a framed socket: the vnet header, then
   * Ethernet); `start` is where Ethernet begins (the vnet_hdr_len, else 0). The port never reuses the buffer,
   * so the sink may keep it (the comparison engine holds it until release).
   */
  onFrame(frame: Buffer, start: number): void;
  /** A rejected frame; `length` is its declared length (bytes received so far for a cut framed frame). */
  onReject(reason: FramingRejectReason, length: number): void;
}

/**
 * Where the data plane sends frames. A port is done with `frame` when send() returns (it copies whatever it
 * queues): the mirror patches the client's frame in place for the secondary right after the primary's port
 * has sent it.
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
