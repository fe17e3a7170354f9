/**
 * What the checkpoint engine asks of a VM. The coordinator (primary side) calls suspend, save and resume;
 * the agent (secondary side) calls suspend, load and resume. Each call rejects with a DriverError on
 * failure or timeout; the engine turns that into an aborted checkpoint.
 */
export interface VmDriver {
  readonly kind: string;
  /**
   * With `announcesStop`, the driver calls `stopping` before the VM stops (at the latest right before; more than
   * once is harmless), after the work it does while the VM still runs (a live pre-copy); without it, the caller
   * treats the call itself as the stop.
   */
  suspend(stopping?: () => void): Promise<void>;
  readonly announcesStop?: boolean;
  /** The VM's whole state; its length is sent ahead of it on the wire. */
  save(): Promise<Buffer>;
  /** `state` may be reused for the next checkpoint once this settles: copy what must outlive it. */
  load(state: Buffer): Promise<void>;
  resume(): Promise<void>;
  close?(): Promise<void>;
}

export type DriverHook = 'suspend' | 'save' | 'load' | 'resume';

export class DriverError extends Error {
  readonly code = 'COLO_DRIVER';
  constructor(
    readonly hook: DriverHook,
    message: string,
    readonly exitStatus: number | null = null,
    readonly stderr = '',
    readonly timedOut = false,
  ) {
    super(message);
    this.name = 'DriverError';
  }
}
