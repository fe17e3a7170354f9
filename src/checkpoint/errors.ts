import { describeSyncPoint, peerErrorName, type SyncPointName } from './syncpoint.js';
import type { DriverHook } from './driver.js';

/**
 * One class per way a checkpoint or a control connection can fail, each with a stable `code`. On the hot
 * path these travel as values (results, event payloads), never as throws.
 */
export abstract class CheckpointError extends Error {
  constructor(
    readonly code: string,
    /** Short, stable reason used in events, logs and metric labels. */
    readonly reason: LossReason,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export type LossReason =
  | 'timeout'
  | 'closed'
  | 'garbage'
  | 'unexpected'
  | 'state-too-large'
  | 'heartbeat'
  | 'peer-error'
  | 'driver'
  | 'version'
  | 'flood'
  | 'not-protected'
  | 'shutdown'
  | 'tls'
  | 'seed-aborted';

/** A bounded wait ran out: the peer stopped answering without closing the connection. */
export class WaitTimeoutError extends CheckpointError {
  constructor(
    readonly expected: SyncPointName,
    readonly timeoutMs: number,
  ) {
    super('COLO_CKPT_TIMEOUT', 'timeout', `no ${expected} within ${timeoutMs} ms`);
  }
}

export class ChannelClosedError extends CheckpointError {
  constructor(
    readonly expected: SyncPointName | null,
    override readonly cause?: Error,
  ) {
    super(
      'COLO_CKPT_CLOSED',
      'closed',
      `control connection closed${expected ? ` while waiting for ${expected}` : ''}${cause ? `: ${cause.message}` : ''}`,
    );
  }
}

/** A well-formed sync point arrived where another was expected. Names both, by name and value. */
export class UnexpectedSyncPointError extends CheckpointError {
  constructor(
    readonly expected: SyncPointName,
    readonly expectedValue: number,
    readonly received: number,
  ) {
    super(
      'COLO_CKPT_UNEXPECTED',
      'unexpected',
      `expected ${describeSyncPoint(expectedValue)}, received ${describeSyncPoint(received)}`,
    );
  }
}

/** Bytes that are no sync point at all. */
export class GarbageError extends CheckpointError {
  constructor(
    readonly expected: SyncPointName | null,
    readonly receivedHex: string,
  ) {
    super(
      'COLO_CKPT_GARBAGE',
      'garbage',
      `${expected ? `expected ${expected}, ` : ''}received ${receivedHex}, which is no sync point`,
    );
  }
}

export class StateTooLargeError extends CheckpointError {
  constructor(
    /** Exact: a bigint beyond 2^53. */
    readonly length: number | bigint,
    readonly max: number,
  ) {
    super('COLO_CKPT_STATE_TOO_LARGE', 'state-too-large', `state of ${length} bytes refused: the maximum is ${max}`);
  }
}

export class HeartbeatLostError extends CheckpointError {
  constructor(readonly silentMs: number) {
    super('COLO_CKPT_HEARTBEAT_LOST', 'heartbeat', `peer silent for ${silentMs} ms (heartbeat lost)`);
  }
}

/** The peer said why it gave up (ERROR extension). */
export class PeerError extends CheckpointError {
  constructor(readonly peerCode: number) {
    super('COLO_CKPT_PEER_ERROR', 'peer-error', `peer reported error ${peerErrorName(peerCode)} (${peerCode})`);
  }
}

/** The local VM driver failed; `cause` is the DriverError with the hook, exit status and stderr. */
export class LocalDriverError extends CheckpointError {
  constructor(
    readonly hook: DriverHook,
    override readonly cause: Error,
  ) {
    super('COLO_CKPT_DRIVER', 'driver', `VM driver hook "${hook}" failed: ${cause.message}`);
  }
}

export class VersionMismatchError extends CheckpointError {
  constructor(
    readonly local: number,
    readonly remote: number,
  ) {
    super('COLO_CKPT_VERSION', 'version', `peer speaks protocol version ${remote}, this side ${local}`);
  }
}

/** The peer sent more messages ahead than any correct peer can. */
export class FloodError extends CheckpointError {
  constructor(readonly queued: number) {
    super('COLO_CKPT_FLOOD', 'flood', `peer sent ${queued} messages nobody waited for`);
  }
}

export class NotProtectedError extends CheckpointError {
  constructor() {
    super('COLO_CKPT_NOT_PROTECTED', 'not-protected', 'no secondary is ready: the pair is not protected');
  }
}

/** The primary sent ABORT during the seeding checkpoint: this VM loaded nothing, so it must not say READY. */
export class SeedAbortedError extends CheckpointError {
  constructor() {
    super(
      'COLO_CKPT_SEED_ABORTED',
      'seed-aborted',
      "the primary aborted the seeding checkpoint: no state of the primary's was loaded, so this side is not ready",
    );
  }
}

export class ShutdownError extends CheckpointError {
  constructor(who: string) {
    super('COLO_CKPT_SHUTDOWN', 'shutdown', `${who} is shutting down`);
  }
}

/** A TLS handshake or certificate check failed: the peer is refused. */
export class TlsRefusedError extends CheckpointError {
  constructor(override readonly cause: Error) {
    super('COLO_CKPT_TLS', 'tls', `TLS refused: ${cause.message}`);
  }
}
