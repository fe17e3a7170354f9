import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Divergence, Packet } from '../../compare/types.js';
import { EventLog, type EventRecord } from '../../src/stats/events.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'colo-events-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function packet(length: number, start = 0): Packet {
  return { frame: Buffer.alloc(length), start, side: 'primary', arrivedAt: 0, tag: 0 };
}

function divergence(time: number, primary: Packet | null, secondary: Packet | null): Divergence {
  return {
    time,
    connection: { protocol: 'tcp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 40000 },
    protocol: 'tcp',
    reason: 'payload',
    offset: 123,
    primary,
    secondary,
    detail: 'byte 123: 0x41 vs "0x42"\nnext',
  };
}

function parseLines(text: string): EventRecord[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as EventRecord);
}

/** A writable whose writes complete only when the test releases them: a disk that stalls. */
class StallingSink extends Writable {
  chunks: string[] = [];
  private held: (() => void)[] = [];
  constructor(highWaterMark: number) {
    super({ highWaterMark, decodeStrings: false });
  }
  override _write(chunk: string, _encoding: BufferEncoding, done: () => void): void {
    this.chunks.push(String(chunk));
    this.held.push(done);
  }
  /** Completes every write so far; more may arrive as a result (the backlog after 'drain'). */
  releaseAll(): void {
    while (this.held.length > 0) this.held.shift()!();
  }
  text(): string {
    return this.chunks.join('');
  }
}

describe('EventLog', () => {
  it('writes one parseable JSON object per line with frame lengths, not frames', async () => {
    const path = join(dir, 'events.ndjson');
    const log = await EventLog.open(path);
    log.divergence(divergence(1000, packet(74, 10), packet(70)));
    log.divergence({ ...divergence(1001, packet(60), null), reason: 'timeout', offset: null });
    log.checkpoint(1002, 'payload', 'ok', { suspend: 1.5, total: 20 });
    log.mode(1003, 'solo', 'secondary lost: heartbeat timeout');
    await log.close();

    const events = parseLines(await readFile(path, 'utf8'));
    expect(events).toEqual([
      {
        type: 'divergence',
        time: 1000,
        connection: { protocol: 'tcp', src: '10.0.0.1', srcPort: 80, dst: '10.0.0.2', dstPort: 40000 },
        reason: 'payload',
        offset: 123,
        detail: 'byte 123: 0x41 vs "0x42"\nnext',
        primaryLength: 64,
        secondaryLength: 70,
        // All-zero frames: no TCP header to find the differing byte in.
        window: null,
      },
      expect.objectContaining({ type: 'divergence', reason: 'timeout', offset: null, secondaryLength: null }),
      { type: 'checkpoint', time: 1002, reason: 'payload', outcome: 'ok', phasesMs: { suspend: 1.5, total: 20 } },
      { type: 'mode', time: 1003, mode: 'solo', detail: 'secondary lost: heartbeat timeout' },
    ]);
    expect(log.written).toBe(4);
    expect(log.dropped).toBe(0);
  });

  it('rejects opening a file in a missing directory with the file error', async () => {
    await expect(EventLog.open(join(dir, 'no', 'such', 'events.ndjson'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('under backpressure, holds lines in memory and writes them in order after drain', async () => {
    const sink = new StallingSink(256);
    const log = new EventLog(sink);
    for (let i = 0; i < 200; i++) log.checkpoint(i, 'timer', 'ok');
    // The stream asked to wait after its buffer filled: only a few writes reached it, the rest are held.
    expect(sink.chunks.length).toBeLessThan(10);
    expect(log.written).toBe(200);
    const closed = log.close();
    sink.releaseAll();
    for (let i = 0; i < 10 && sink.writableLength > 0; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      sink.releaseAll();
    }
    await closed;
    const events = parseLines(sink.text());
    expect(events.map((e) => e.time)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(log.dropped).toBe(0);
  });

  it('writes the backlog as one chunk on drain, not line by line', async () => {
    const sink = new StallingSink(64);
    const log = new EventLog(sink);
    for (let i = 0; i < 50; i++) log.checkpoint(i, 'timer', 'ok');
    const before = sink.chunks.length;
    sink.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.chunks.length).toBe(before + 1);
    sink.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    const closed = log.close();
    sink.releaseAll();
    await closed;
    expect(parseLines(sink.text())).toHaveLength(50);
  });

  it('past the memory bound, drops and counts lines and says so in the log', async () => {
    const sink = new StallingSink(64);
    const log = new EventLog(sink, { maxPendingBytes: 1000 });
    for (let i = 0; i < 100; i++) log.checkpoint(i, 'timer', 'ok');
    expect(log.dropped).toBeGreaterThan(0);
    expect(log.written + log.dropped).toBe(100);
    sink.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    sink.releaseAll();
    log.checkpoint(100, 'timer', 'ok');
    const closed = log.close();
    sink.releaseAll();
    await closed;

    const events = parseLines(sink.text());
    const note = events.find((e) => e.type === 'events-dropped');
    expect(note).toEqual({ type: 'events-dropped', time: 99, count: log.dropped });
    const kept = events.filter((e) => e.type === 'checkpoint');
    expect(kept).toHaveLength(log.written);
    expect(kept.at(-1)?.time).toBe(100);
  });

  it('counts lines written after close as dropped', async () => {
    const log = await EventLog.open(join(dir, 'e.ndjson'));
    await log.close();
    log.checkpoint(1, 'timer', 'ok');
    expect(log.dropped).toBe(1);
  });

  it('after a write error, counts later lines as dropped and close() rejects with the error', async () => {
    const sink = new Writable({
      write(_chunk, _encoding, done) {
        done(new Error('disk full'));
      },
    });
    const log = new EventLog(sink);
    log.checkpoint(1, 'timer', 'ok');
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.error?.message).toBe('disk full');
    log.checkpoint(2, 'timer', 'ok');
    expect(log.dropped).toBeGreaterThanOrEqual(1);
    await expect(log.close()).rejects.toThrow('disk full');
  });
});
