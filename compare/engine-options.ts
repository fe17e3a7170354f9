/** The comparison engine's options (compare/engine.ts), their defaults, and their one validation. */
import type { PassthroughRule } from './passthrough.js';

export interface CompareOptions {
  /** A packet held longer than this (ms) asks for a checkpoint (reason 'timeout', or 'ack'). QEMU: 3000. */
  compareTimeoutMs: number;
  /** How often the caller should call tick() (ms). The engine itself keeps no timer. QEMU: 1000. */
  expiredScanCycleMs: number;
  /** Packets per connection per side before a checkpoint is asked for (reason 'overflow'). QEMU: 1024. */
  maxQueueSize: number;
  /**
   * Connections tracked, a hard bound: a new one takes an idle one's place, or is passed uncompared when none
   * is idle (EngineStats.connectionsRefused). QEMU resets its whole table at 16384.
   */
  maxConnections: number;
  /** A connection with nothing held and no packet for this long (ms) is forgotten at the next tick(). */
  connectionIdleMs: number;
  /**
   * Hard bounds on what the engine holds, per side and in total, in frames and bytes. Passing one flushes
   * unprotected: every held primary packet is released uncompared, every held secondary one dropped
   * (EngineStats.heldBoundFlushes). --max-queue-size bounds one connection; these bound them all.
   */
  maxHeldFramesPerSide: number;
  maxHeldBytesPerSide: number;
  maxHeldFrames: number;
  maxHeldBytes: number;
  /**
   * Where TCP comparison resumes after a flush (docs/compare.md): each side at its own next segment (QEMU's
   * assumption), or the secondary by its sequence number in the primary's space (needs its seqs rewritten
   * into that space, as the inline proxy does; copes with a secondary that lags or leads after a checkpoint).
   */
  tcpAlignAfterFlush: 'next-segment' | 'sequence';
  /**
   * Flows released from the primary and dropped from the secondary without comparison, never tracked
   * (compare/passthrough.ts parses them). CompareEngine.setPassthrough() replaces them at run time.
   */
  passthrough: readonly PassthroughRule[];
}

export const defaultCompareOptions: CompareOptions = {
  compareTimeoutMs: 3000,
  expiredScanCycleMs: 1000,
  maxQueueSize: 1024,
  maxConnections: 16384,
  connectionIdleMs: 60_000,
  maxHeldFramesPerSide: 32_768,
  maxHeldBytesPerSide: 32 * 1024 * 1024,
  maxHeldFrames: 49_152,
  maxHeldBytes: 48 * 1024 * 1024,
  tcpAlignAfterFlush: 'next-segment',
  passthrough: [],
};

/**
 * `options` over the defaults, checked: every count and duration a positive integer, the alignment one of its
 * two names. Throws RangeError naming the option and the value received (engine construction is an edge).
 */
export function compareOptions(options: Partial<CompareOptions>): CompareOptions {
  const o: CompareOptions = { ...defaultCompareOptions, ...options };
  for (const [name, value] of Object.entries({
    compareTimeoutMs: o.compareTimeoutMs,
    expiredScanCycleMs: o.expiredScanCycleMs,
    maxQueueSize: o.maxQueueSize,
    maxConnections: o.maxConnections,
    connectionIdleMs: o.connectionIdleMs,
    maxHeldFramesPerSide: o.maxHeldFramesPerSide,
    maxHeldBytesPerSide: o.maxHeldBytesPerSide,
    maxHeldFrames: o.maxHeldFrames,
    maxHeldBytes: o.maxHeldBytes,
  })) {
    if (!Number.isInteger(value) || value <= 0)
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const alignment = o.tcpAlignAfterFlush;
  if (alignment !== 'next-segment' && alignment !== 'sequence')
    throw new RangeError(`tcpAlignAfterFlush must be 'next-segment' or 'sequence', got ${String(alignment)}`);
  return o;
}
