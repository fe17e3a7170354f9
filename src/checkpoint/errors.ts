import { describeSyncPoint, peerErrorName, type SyncPointName } from './syncpoint.js';
import type { DriverHook } from './driver.js';

/**
 * One class per way a checkpoint or a control connection can fail, each with a stable `code`. On the hot
 * path these travel as values (results, event payloads), never as throws.
 */
export abstract class CheckpointError extends Error {
  abstract readonly code: string;
  /** Short, stable reason used in events, logs and metric labels. */
  abstract readonly reason: LossReason;
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
  | 'tls';

/** A bounded wait ran out: the peer stopped answering without closing the connection. */
export class WaitTimeoutError extends CheckpointError {
  readonly code = 'COLO_CKPT_TIMEOUT';
  readonly reason = 'timeout';
  constructor(
    readonly expected: SyncPointName,
    readonly timeoutMs: number,
  ) {
    super(`no ${expected} within ${timeoutMs} ms`);
    this.name = 'WaitTimeoutError';
  }
}

export class ChannelClosedError extends CheckpointError {
  readonly code = 'COLO_CKPT_CLOSED';
  readonly reason = 'closed';
  constructor(
    readonly expected: SyncPointName | null,
    override readonly cause?: Error,
  ) {
    super(
      `control connection closed${expected ? ` while waiting for ${expected}` : ''}${cause ? `: ${cause.message}` : ''}`,
    );
    this.name = 'ChannelClosedError';
  }
}

/** A well-formed sync point arrived where another was expected. Names both, by name and value. */
export class UnexpectedSyncPointError extends CheckpointError {
  readonly code = 'COLO_CKPT_UNEXPECTED';
  readonly reason = 'unexpected';
  constructor(
    readonly expected: SyncPointName,
    readonly expectedValue: number,
    readonly received: number,
  ) {
    super(`expected ${describeSyncPoint(expectedValue)}, received ${describeSyncPoint(received)}`);
    this.name = 'UnexpectedSyncPointError';
  }
}

/** Bytes that are no sync point at all. */
export class GarbageError extends CheckpointError {
  readonly code = 'COLO_CKPT_GARBAGE';
  readonly reason = 'garbage';
  constructor(
    readonly expected: SyncPointName | null,
    readonly receivedHex: string,
  ) {
    super(`${expected ? `expected ${expected}, ` : ''}received ${receivedHex}, which is no sync point`);
    this.name = 'GarbageError';
  }
}

export class StateTooLargeError extends CheckpointError {
  readonly code = 'COLO_CKPT_STATE_TOO_LARGE';
  readonly reason = 'state-too-large';
  constructor(
    readonly length: number,
    readonly max: number,
  ) {
    super(`state of ${length} bytes refused: the maximum is ${max}`);
    this.name = 'StateTooLargeError';
  }
}

export class HeartbeatLostError extends CheckpointError {
  readonly code = 'COLO_CKPT_HEARTBEAT_LOST';
  readonly reason = 'heartbeat';
  constructor(readonly silentMs: number) {
    super(`peer silent for ${silentMs} ms (heartbeat lost)`);
    this.name = 'HeartbeatLostError';
  }
}

/** The peer said why it gave up (ERROR extension). */
export class PeerError extends CheckpointError {
  readonly code = 'COLO_CKPT_PEER_ERROR';
  readonly reason = 'peer-error';
  constructor(readonly peerCode: number) {
    super(`peer reported error ${peerErrorName(peerCode)} (${peerCode})`);
    this.name = 'PeerError';
  }
}

/** The local VM driver failed; `cause` is the DriverError with the hook, exit status and stderr. */
export class LocalDriverError extends CheckpointError {
  readonly code = 'COLO_CKPT_DRIVER';
  readonly reason = 'driver';
  constructor(
    readonly hook: DriverHook,
    override readonly cause: Error,
  ) {
    super(`VM driver hook "${hook}" failed: ${cause.message}`);
    this.name = 'LocalDriverError';
  }
}

export class VersionMismatchError extends CheckpointError {
  readonly code = 'COLO_CKPT_VERSION';
  readonly reason = 'version';
  constructor(
    readonly local: number,
    readonly remote: number,
  ) {
    super(`peer speaks protocol version ${remote}, this side ${local}`);
    this.name = 'VersionMismatchError';
  }
}

/** The peer sent more messages ahead than any correct peer can. */
export class FloodError extends CheckpointError {
  readonly code = 'COLO_CKPT_FLOOD';
  readonly reason = 'flood';
  constructor(readonly queued: number) {
    super(`peer sent ${queued} messages nobody waited for`);
    this.name = 'FloodError';
  }
}

export class NotProtectedError extends CheckpointError {
  readonly code = 'COLO_CKPT_NOT_PROTECTED';
  readonly reason = 'not-protected';
  constructor() {
    super('no secondary is ready: the pair is not protected');
    this.name = 'NotProtectedError';
  }
}

export class ShutdownError extends CheckpointError {
  readonly code = 'COLO_CKPT_SHUTDOWN';
  readonly reason = 'shutdown';
  constructor(who: string) {
    super(`${who} is shutting down`);
    this.name = 'ShutdownError';
  }
}

/** A TLS handshake or certificate check failed: the peer is refused. */
export class TlsRefusedError extends CheckpointError {
  readonly code = 'COLO_CKPT_TLS';
  readonly reason = 'tls';
  constructor(override readonly cause: Error) {
    super(`TLS refused: ${cause.message}`);
    this.name = 'TlsRefusedError';
  }
}
