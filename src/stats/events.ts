import type { Writable } from 'node:stream';
import type { ModeSwitch } from '../../compare/protection-mode.js';
import type { Divergence } from '../../compare/types.js';
import type { Mode } from '../../proxy/inline.js';
import { openWriteStream } from '../capture/sink.js';
import type { CheckpointOutcomeLabel } from '../checkpoint/engine.js';
import { divergenceRecord, type DivergenceRecord } from './divergence-record.js';
import type { ReportedPhase } from './metric-names.js';

/** One line of the NDJSON event log (`--events FILE`). Documented in docs/statistics.md. */
export type EventRecord = DivergenceEvent | CheckpointEvent | ModeEvent | ModeSwitchEvent | EventsDroppedEvent;

/** A divergence: the shared record (src/stats/divergence-record.ts) with its line type. */
export interface DivergenceEvent extends DivergenceRecord {
  type: 'divergence';
}

export interface CheckpointEvent {
  type: 'checkpoint';
  time: number;
  /** Why it was asked for: a divergence reason, 'timer', or the caller's own word. */
  reason: string;
  outcome: CheckpointOutcomeLabel;
  phasesMs: Partial<Record<ReportedPhase, number>>;
}

export interface ModeEvent {
  type: 'mode';
  time: number;
  mode: Mode;
  detail: string;
}

/** A hybrid protection-mode switch (compare/protection-mode.ts): compare <-> periodic, with its reason. */
export interface ModeSwitchEvent extends Omit<ModeSwitch, 'at'> {
  type: 'mode-switch';
  time: number;
}

/** Written when the log resumes after dropping lines (writer too slow beyond the memory bound). */
export interface EventsDroppedEvent {
  type: 'events-dropped';
  time: number;
  count: number;
}

export interface EventLogOptions {
  /** Lines kept in memory while the stream asks to wait for 'drain'; beyond this they are dropped and counted. */
  maxPendingBytes?: number;
}

const defaultMaxPendingBytes = 8 * 1024 * 1024;

/**
 * Appends one JSON object per line. Callers on the hot path never wait: when the stream applies
 * backpressure (write() returned false), lines collect in memory until 'drain' and are then written as one
 * chunk. Memory is bounded: past maxPendingBytes a line is dropped, counted in `dropped`, and an
 * 'events-dropped' line records how many once writing resumes — loss is never silent.
 */
export class EventLog {
  /** Lines accepted (written or waiting to be). */
  written = 0;
  /** Lines dropped because the writer was too slow, or after a write error. */
  dropped = 0;
  /** The first write error; later lines are dropped and counted, and close() rejects with it. */
  error: Error | null = null;

  private readonly maxPendingBytes: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private waitingForDrain = false;
  private droppedUnreported = 0;
  private lastTime = 0;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly stream: Writable,
    options: EventLogOptions = {},
  ) {
    this.maxPendingBytes = options.maxPendingBytes ?? defaultMaxPendingBytes;
    stream.on('drain', () => this.onDrain());
    stream.on('error', (err: Error) => {
      this.error ??= err;
      this.dropped += this.pending.length;
      this.pending = [];
      this.pendingBytes = 0;
    });
  }

  /** Opens (truncates) FILE; rejects with the file's error (e.g. ENOENT for a missing directory). */
  static async open(path: string, options?: EventLogOptions): Promise<EventLog> {
    return new EventLog(await openWriteStream(path), options);
  }

  /** `clockOriginMs`: added to the engine's time (0 live; the first frame's capture time in replay). */
  divergence(d: Divergence, clockOriginMs = 0): void {
    this.write({ type: 'divergence', ...divergenceRecord(d, clockOriginMs) });
  }

  checkpoint(
    time: number,
    reason: string,
    outcome: CheckpointOutcomeLabel,
    phasesMs: Partial<Record<ReportedPhase, number>> = {},
  ): void {
    const event: CheckpointEvent = { type: 'checkpoint', time, reason, outcome, phasesMs };
    this.write(event);
  }

  mode(time: number, mode: Mode, detail = ''): void {
    const event: ModeEvent = { type: 'mode', time, mode, detail };
    this.write(event);
  }

  modeSwitch(time: number, change: ModeSwitch): void {
    const { at: _at, ...rest } = change;
    const event: ModeSwitchEvent = { type: 'mode-switch', time, ...rest };
    this.write(event);
  }

  write(event: EventRecord): void {
    this.lastTime = event.time;
    if (this.error !== null || this.closing !== null) {
      this.dropped++;
      return;
    }
    const line = JSON.stringify(event) + '\n';
    if (this.waitingForDrain) {
      if (this.pendingBytes + line.length > this.maxPendingBytes) {
        this.dropped++;
        this.droppedUnreported++;
        return;
      }
      this.pending.push(line);
      this.pendingBytes += line.length;
      this.written++;
      return;
    }
    this.written++;
    if (!this.stream.write(line)) this.waitingForDrain = true;
  }

  private onDrain(): void {
    this.waitingForDrain = false;
    // After close() the backlog has been handed to end(); nothing more may be written.
    if (this.error !== null || this.closing !== null) return;
    let chunk = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    if (this.droppedUnreported > 0) {
      const note: EventsDroppedEvent = { type: 'events-dropped', time: this.lastTime, count: this.droppedUnreported };
      chunk += JSON.stringify(note) + '\n';
      this.droppedUnreported = 0;
    }
    if (chunk.length > 0 && !this.stream.write(chunk)) this.waitingForDrain = true;
  }

  /** Writes what is pending, ends the stream and resolves when it is flushed (rejects on a write error). */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        this.stream.end((err?: Error | null) => {
          const failure = err ?? this.error;
          if (failure) reject(failure);
          else resolve();
        });
      };
      if (this.error !== null) {
        reject(this.error);
        return;
      }
      if (!this.waitingForDrain) {
        finish();
        return;
      }
      // Writable.end() after pending data is fine: write the backlog now and let end() flush it.
      const backlog = this.pending.join('');
      this.pending = [];
      this.pendingBytes = 0;
      if (backlog.length > 0) this.stream.write(backlog);
      if (this.droppedUnreported > 0) {
        this.stream.write(
          JSON.stringify({ type: 'events-dropped', time: this.lastTime, count: this.droppedUnreported }) + '\n',
        );
        this.droppedUnreported = 0;
      }
      finish();
    });
    return this.closing;
  }
}
