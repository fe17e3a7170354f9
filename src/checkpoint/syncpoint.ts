/**
 * The checkpoint control channel's wire format: every message is an 8-byte big-endian unsigned integer.
 * The six seed values (READY..LOADED) are fixed; SEND is followed by the state as a u64 length and that many
 * bytes. Extensions use values >= 0x100 and are only ever sent to a peer that announced HELLO first
 * (docs/protocol.md). HELLO and ERROR carry one u64 argument; HEARTBEAT and ABORT carry none.
 */

export const SyncPoint = {
  READY: 0x46,
  NEW: 0x47,
  SUSPENDED: 0x48,
  SEND: 0x49,
  RECEIVED: 0x4a,
  LOADED: 0x4b,
  HELLO: 0x100,
  HEARTBEAT: 0x101,
  ERROR: 0x102,
  ABORT: 0x103,
} as const;

export type SyncPointName = keyof typeof SyncPoint;
export type SyncPointValue = (typeof SyncPoint)[SyncPointName];

/** Extensions start here; a seed-only peer never sends or receives a value at or above it. */
export const EXTENSION_BASE = 0x100;

/** The version this implementation announces in HELLO. */
export const PROTOCOL_VERSION = 1;

/** Why a peer gave up, carried by ERROR. Values are part of the wire format: append, never renumber. */
export const PeerErrorCode = {
  /** The sender is dropping the connection on purpose (e.g. the primary goes solo); not a crash. */
  DROPPING: 1,
  PROTOCOL: 2,
  TIMEOUT: 3,
  SUSPEND_FAILED: 4,
  LOAD_FAILED: 5,
  RESUME_FAILED: 6,
  STATE_TOO_LARGE: 7,
  VERSION: 8,
  SHUTDOWN: 9,
} as const;
export type PeerErrorName = keyof typeof PeerErrorCode;

const namesByValue = new Map<number, SyncPointName>(
  (Object.keys(SyncPoint) as SyncPointName[]).map((name) => [SyncPoint[name], name]),
);

export function isSyncPointValue(value: number): value is SyncPointValue {
  return namesByValue.has(value);
}

export function syncPointName(value: number): SyncPointName | 'unknown' {
  return namesByValue.get(value) ?? 'unknown';
}

/** "SUSPENDED (0x48)": how every log line and error names a sync point. */
export function describeSyncPoint(value: number | bigint): string {
  const name = typeof value === 'number' ? syncPointName(value) : 'unknown';
  return `${name} (0x${value.toString(16)})`;
}

export function peerErrorName(code: number): PeerErrorName | 'unknown' {
  for (const name of Object.keys(PeerErrorCode) as PeerErrorName[]) if (PeerErrorCode[name] === code) return name;
  return 'unknown';
}

/** Field offsets of the fixed-size messages. */
const F = { VALUE: 0, ARG: 8 } as const;
const WORD = 8;

function writeU64(buf: Buffer, offset: number, value: number): void {
  // Split by hand: a JS number is exact to 2^53, far above any state this process can hold.
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Encodes one bare sync point (8 bytes). */
export function encodeSyncPoint(value: number): Buffer {
  const buf = Buffer.allocUnsafe(WORD);
  writeU64(buf, F.VALUE, value);
  return buf;
}

/** HELLO or ERROR with its argument (16 bytes). */
export function encodeWithArgument(value: typeof SyncPoint.HELLO | typeof SyncPoint.ERROR, arg: number): Buffer {
  const buf = Buffer.allocUnsafe(2 * WORD);
  writeU64(buf, F.VALUE, value);
  writeU64(buf, F.ARG, arg);
  return buf;
}

/** SEND and the state's length (16 bytes); the state bytes follow as a separate write, never copied. */
export function encodeSendHeader(stateLength: number): Buffer {
  const buf = Buffer.allocUnsafe(2 * WORD);
  writeU64(buf, F.VALUE, SyncPoint.SEND);
  writeU64(buf, F.ARG, stateLength);
  return buf;
}

/**
 * The bare sync points, encoded once. socket.write keeps a reference until the bytes are flushed, so these
 * must never be written into; they are frozen by convention (Buffers cannot be frozen).
 */
export const encoded: Readonly<Record<SyncPointName, Buffer>> = Object.fromEntries(
  (Object.keys(SyncPoint) as SyncPointName[]).map((name) => [name, encodeSyncPoint(SyncPoint[name])]),
) as Record<SyncPointName, Buffer>;

/** A decoding failure: a typed value, never a throw. */
export type DecodeFailure =
  | { reason: 'unknown-value'; hex: string }
  /** `length` is a bigint when it is beyond 2^53, where a number would print it rounded. */
  | { reason: 'state-too-large'; length: number | bigint; max: number };

/** What the decoder hands to its sink, in wire order. */
export interface DecoderSink {
  /** A bare sync point (seed values, HEARTBEAT, ABORT). */
  syncPoint(value: SyncPointValue): void;
  /** HELLO or ERROR with its argument. */
  withArgument(value: typeof SyncPoint.HELLO | typeof SyncPoint.ERROR, arg: number): void;
  /** The SEND header was read; `length` bytes of state follow. Lets the receiver time the transfer. */
  stateBegin(length: number): void;
  /** The whole state after SEND. A view into the chunk when one chunk held it all, else one exact-size copy. */
  state(state: Buffer): void;
}

const enum Stage {
  Value,
  Argument,
  StateLength,
  StateBytes,
}

/**
 * A streaming decoder over arbitrary chunk boundaries. Words split across chunks are gathered in one 8-byte
 * scratch buffer; the state is gathered into one buffer of exactly its announced size (allocated once, when
 * the length arrives), so each state byte is copied at most once. After a failure it decodes nothing more.
 */
export class SyncPointDecoder {
  private readonly scratch = Buffer.alloc(WORD);
  private scratchFill = 0;
  private stage = Stage.Value;
  private pendingValue: typeof SyncPoint.HELLO | typeof SyncPoint.ERROR = SyncPoint.HELLO;
  private state: Buffer | null = null;
  private stateFill = 0;
  private failure: DecodeFailure | null = null;
  /** Set when the caller reuses its chunk buffers: states are then always copied out. */
  chunksAreReused = false;
  /**
   * Gather states into one buffer kept from checkpoint to checkpoint. Fresh memory costs a page fault per
   * page on first touch (measured: 1 s for 64 MiB on a loaded VM, 15 ms when reused), so reusing it is
   * most of the transfer speed. A lent buffer is never written: until releaseState(), a state that
   * begins meanwhile gets memory of its own.
   */
  reuseStateBuffer = false;
  private spare: Buffer | null = null;
  private lent = false;

  constructor(
    private readonly sink: DecoderSink,
    /** Lengths above this are refused before anything is allocated. */
    public maxStateBytes: number,
  ) {}

  get failed(): DecodeFailure | null {
    return this.failure;
  }

  /** Bytes of state still expected, or 0 when not inside a state. */
  get stateRemaining(): number {
    return this.stage === Stage.StateBytes && this.state !== null ? this.state.length - this.stateFill : 0;
  }

  push(chunk: Buffer): DecodeFailure | null {
    let offset = 0;
    while (offset < chunk.length && this.failure === null) {
      if (this.stage === Stage.StateBytes) {
        offset = this.takeState(chunk, offset);
        continue;
      }
      // Read one word: straight from the chunk when it holds all 8 bytes, else through the scratch buffer.
      let hi: number;
      let lo: number;
      if (this.scratchFill === 0 && chunk.length - offset >= WORD) {
        hi = chunk.readUInt32BE(offset);
        lo = chunk.readUInt32BE(offset + 4);
        offset += WORD;
      } else {
        const n = Math.min(WORD - this.scratchFill, chunk.length - offset);
        chunk.copy(this.scratch, this.scratchFill, offset, offset + n);
        this.scratchFill += n;
        offset += n;
        if (this.scratchFill < WORD) break;
        this.scratchFill = 0;
        hi = this.scratch.readUInt32BE(0);
        lo = this.scratch.readUInt32BE(4);
      }
      this.word(hi, lo, chunk, offset);
    }
    return this.failure;
  }

  private word(hi: number, lo: number, chunk: Buffer, offset: number): void {
    switch (this.stage) {
      case Stage.Value: {
        if (hi !== 0 || !isSyncPointValue(lo)) {
          this.failure = { reason: 'unknown-value', hex: hexWord(hi, lo) };
          return;
        }
        if (lo === SyncPoint.SEND) this.stage = Stage.StateLength;
        else if (lo === SyncPoint.HELLO || lo === SyncPoint.ERROR) {
          this.pendingValue = lo;
          this.stage = Stage.Argument;
        } else this.sink.syncPoint(lo);
        return;
      }
      case Stage.Argument: {
        this.stage = Stage.Value;
        this.sink.withArgument(this.pendingValue, hi * 0x1_0000_0000 + lo);
        return;
      }
      case Stage.StateLength: {
        const length = hi * 0x1_0000_0000 + lo;
        if (length > this.maxStateBytes) {
          const exact = Number.isSafeInteger(length) ? length : (BigInt(hi) << 32n) | BigInt(lo);
          this.failure = { reason: 'state-too-large', length: exact, max: this.maxStateBytes };
          return;
        }
        this.sink.stateBegin(length);
        if (length === 0) {
          this.stage = Stage.Value;
          this.sink.state(Buffer.alloc(0));
        } else if (!this.chunksAreReused && chunk.length - offset >= length) {
          // The whole state sits in this chunk: hand out a view, copy nothing. takeState consumes it.
          this.state = chunk.subarray(offset, offset + length);
          this.stateFill = 0;
          this.stage = Stage.StateBytes;
        } else {
          this.state = this.stateBuffer(length);
          this.stateFill = 0;
          this.stage = Stage.StateBytes;
        }
        return;
      }
      case Stage.StateBytes:
        return;
    }
  }

  /** The state handed out last may be overwritten from now on. */
  releaseState(): void {
    this.lent = false;
  }

  private stateBuffer(length: number): Buffer {
    if (!this.reuseStateBuffer || this.lent) return Buffer.allocUnsafe(length);
    if (this.spare === null || this.spare.length < length) this.spare = Buffer.allocUnsafe(length);
    this.lent = true;
    return this.spare.subarray(0, length);
  }

  private takeState(chunk: Buffer, offset: number): number {
    const state = this.state as Buffer;
    const n = Math.min(state.length - this.stateFill, chunk.length - offset);
    // A view straight into this chunk needs no copy: its bytes already sit where they belong.
    if (state.buffer !== chunk.buffer || state.byteOffset !== chunk.byteOffset + offset - this.stateFill) {
      chunk.copy(state, this.stateFill, offset, offset + n);
    }
    this.stateFill += n;
    if (this.stateFill === state.length) {
      this.state = null;
      this.stage = Stage.Value;
      this.sink.state(state);
    }
    return offset + n;
  }
}

function hexWord(hi: number, lo: number): string {
  return hi === 0 ? `0x${lo.toString(16)}` : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;
}
