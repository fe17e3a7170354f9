/**
 * The framing + engine campaign: mutated frames, QEMU-framed (proxy/ports/framed.ts) and cut into random
 * chunks, decoded and pushed into a CompareEngine driven the way the drop-in drives it (ticks, a checkpoint
 * then flush() after each divergence, a periodic timer), with stretches where the checkpointer never answers.
 * Every decoded frame is labelled with its index (the engine's `tag`) and must meet exactly one fate:
 * released, dropped (a bound's flush included), malformed, rejected by the framing, or held at the end.
 */
import { CompareEngine, type CompareOptions } from '../../compare/engine.js';
import type { Decision, Side } from '../../compare/types.js';
import type { FramingRejectReason, FrameSink } from '../../proxy/port.js';
import { encodeFrame, FrameDecoder } from '../../proxy/ports/framed.js';
import { FrameSource } from './frame-source.js';
import { Rng } from './rng.js';

export interface FrameCampaignOptions {
  frames: number;
  seed: number;
  /** A single push or decode longer than this (wall ms) counts as a hang. */
  boundMs?: number;
  /** Called with the RSS (MiB) about ten times across the run. */
  onRss?: (frames: number, rssMb: number) => void;
}

export interface FailureRecord {
  seed: number;
  /** The index of the decoded frame (or frame pair) that failed, and its bytes in hex. */
  index: number;
  side: Side | 'framing';
  input: string;
  error: string;
}

export interface FrameReport {
  frames: number;
  crashes: number;
  hangs: number;
  unaccounted: number;
  fates: {
    released: number;
    dropped: number;
    malformed: number;
    rejected: Partial<Record<FramingRejectReason, number>>;
    heldAtEnd: number;
    /** Subsets of released and dropped: frames a held-frames or held-bytes bound flushed. */
    boundReleased: number;
    boundDropped: number;
    /** Packets of new connections passed uncompared because the table was full (released or dropped). */
    connectionsRefused: number;
  };
  /** Frames encoded in well-framed streams that the decoder did not hand out one for one. */
  framingMismatches: number;
  /** Times the engine held more than a bound allows (per side or in total, frames or bytes). */
  boundViolations: number;
  peakHeldFrames: number;
  peakConnections: number;
  divergences: number;
  checkpoints: number;
  engines: number;
  failures: FailureRecord[];
}

/**
 * Frames per engine, at most: each epoch ends with a final flush and starts a fresh engine with the other
 * options. A short run still gets four epochs, so both option sets are used.
 */
const MAX_EPOCH = 500_000;
/** Small bounds in every other epoch, so the bounds and the table's eviction are passed often. */
const TIGHT: Partial<CompareOptions> = {
  maxConnections: 64,
  maxQueueSize: 64,
  maxHeldFramesPerSide: 2048,
  maxHeldBytesPerSide: 1 << 20,
  maxHeldFrames: 3072,
  maxHeldBytes: 3 << 19,
  connectionIdleMs: 2000,
  tcpAlignAfterFlush: 'sequence',
};

export function runFrameCampaign(options: FrameCampaignOptions): FrameReport {
  return new FrameCampaign(options).run();
}

class FrameCampaign implements FrameSink {
  private readonly rng: Rng;
  private readonly source: FrameSource;
  private readonly boundMs: number;
  private engine!: CompareEngine;
  private engineOptions!: CompareOptions;
  private readonly report: FrameReport;
  /** fates[tag]: how many fates the decoded frame `tag` met (must end as exactly 1). */
  private fates = new Uint8Array(1 << 16);
  private decoded = 0;
  private side: Side = 'primary';
  private now = 0;
  private nextTick = 0;
  private nextTimer = 0;
  private flushAt = Infinity;
  /** While true, checkpoint requests go unanswered (a silent notify peer). */
  private silent = false;
  private lastInput: Buffer = Buffer.alloc(0);

  constructor(private readonly options: FrameCampaignOptions) {
    this.rng = new Rng(options.seed);
    this.source = new FrameSource(new Rng(options.seed ^ 0x5eed_f4a3));
    this.boundMs = options.boundMs ?? 1000;
    this.report = {
      frames: 0,
      crashes: 0,
      hangs: 0,
      unaccounted: 0,
      fates: {
        released: 0,
        dropped: 0,
        malformed: 0,
        rejected: {},
        heldAtEnd: 0,
        boundReleased: 0,
        boundDropped: 0,
        connectionsRefused: 0,
      },
      framingMismatches: 0,
      boundViolations: 0,
      peakHeldFrames: 0,
      peakConnections: 0,
      divergences: 0,
      checkpoints: 0,
      engines: 0,
      failures: [],
    };
  }

  run(): FrameReport {
    const total = this.options.frames;
    const rssEvery = Math.max(1, Math.floor(total / 10));
    let nextRss = 0;
    this.newEngine();
    const epoch = Math.max(1000, Math.min(MAX_EPOCH, Math.ceil(total / 4)));
    let epochEnd = epoch;
    let produced = 0;
    // Pairs until the decoder has handed out `frames` frames (both sides counted).
    while (produced < total) {
      this.runBatch(Math.max(1, Math.min(Math.ceil((total - produced) / 2), this.rng.between(1, 64))));
      produced = this.report.frames;
      if (produced >= nextRss) {
        this.options.onRss?.(produced, process.memoryUsage.rss() / 2 ** 20);
        nextRss += rssEvery;
      }
      if (produced >= epochEnd) {
        this.endEngine();
        this.newEngine();
        epochEnd += epoch;
      }
    }
    this.endEngine();
    this.options.onRss?.(produced, process.memoryUsage.rss() / 2 ** 20);
    this.account();
    return this.report;
  }

  /** One batch of frame pairs, framed per side and fed to the decoder in random chunks. */
  private runBatch(pairs: number): void {
    const rng = this.rng;
    const streams: Record<Side, Buffer[]> = { primary: [], secondary: [] };
    const vnetHdr = rng.chance(0.2);
    for (let i = 0; i < pairs; i++) {
      const pair = this.source.next();
      streams.primary.push(this.encode(pair.primary, vnetHdr));
      if (pair.secondary) streams.secondary.push(this.encode(pair.secondary, vnetHdr));
    }
    // Interleave the sides the way two sockets' reads would.
    const order: Side[] = rng.chance(0.5) ? ['primary', 'secondary'] : ['secondary', 'primary'];
    for (const side of order) {
      const frames = streams[side];
      if (frames.length === 0) continue;
      const corrupt = rng.chance(0.01);
      const stream = corrupt ? this.corruptFraming(frames, vnetHdr) : Buffer.concat(frames);
      const before = this.decoded;
      this.feed(side, stream, vnetHdr);
      if (!corrupt && this.decoded - before !== frames.length) {
        this.report.framingMismatches += Math.abs(this.decoded - before - frames.length);
      }
      this.advanceClock();
    }
  }

  private encode(frame: Buffer, vnetHdr: boolean): Buffer {
    if (!vnetHdr) return encodeFrame(frame, false);
    // A vnet header in front of the Ethernet frame, as QEMU sends with vnet_hdr_support.
    const vnetLength = this.rng.pick([0, 10, 12]);
    return encodeFrame(Buffer.concat([Buffer.alloc(vnetLength), frame]), true, vnetLength);
  }

  /** The stream with framing faults spliced in: zero lengths, vnet lengths past the frame, oversized, cut ends. */
  private corruptFraming(frames: Buffer[], vnetHdr: boolean): Buffer {
    const rng = this.rng;
    const parts = [...frames];
    const at = rng.below(parts.length + 1);
    const header = Buffer.alloc(vnetHdr ? 8 : 4);
    switch (rng.below(5)) {
      case 0:
        parts.splice(at, 0, header);
        break;
      case 1:
        header.writeUInt32BE(rng.between(1, 100), 0);
        if (vnetHdr) header.writeUInt32BE(rng.between(101, 0xffffffff), 4);
        parts.splice(at, 0, Buffer.concat([header, rng.bytes(header.readUInt32BE(0))]));
        break;
      case 2:
        header.writeUInt32BE(rng.pick([69633, 0xffffffff, rng.between(69633, 0xffffffff)]), 0);
        parts.splice(at, 0, header);
        break;
      case 3:
        parts.push(rng.bytes(rng.between(1, 3)));
        break;
      default:
        parts.splice(at, 0, rng.bytes(rng.between(1, 64)));
    }
    return Buffer.concat(parts);
  }

  private feed(side: Side, stream: Buffer, vnetHdr: boolean): void {
    const decoder = new FrameDecoder(vnetHdr, this);
    this.side = side;
    let pos = 0;
    while (pos < stream.length) {
      const end = Math.min(stream.length, pos + this.rng.between(1, 9000));
      this.lastInput = stream.subarray(pos, end);
      const started = performance.now();
      let status: string;
      try {
        status = decoder.push(stream.subarray(pos, end));
      } catch (err) {
        this.fail(this.decoded, 'framing', this.lastInput, err);
        return;
      }
      this.checkTime(started, this.decoded, 'framing');
      // 'close': only this connection goes; the rest of the stream is lost with it, like a socket's.
      if (status === 'close') return;
      pos = end;
    }
    decoder.end();
  }

  onFrame(frame: Buffer, start: number): void {
    const tag = this.decoded++;
    this.report.frames++;
    this.growFates(tag);
    this.lastInput = frame;
    const started = performance.now();
    let decision: Decision;
    try {
      decision = this.engine.push(this.side, frame, start, this.now, tag);
    } catch (err) {
      this.fail(tag, this.side, frame, err);
      return;
    }
    this.checkTime(started, tag, this.side);
    if (decision.malformed.length > 0) {
      this.fates[tag]!++;
      this.report.fates.malformed += decision.malformed.length;
    }
    this.consume(decision);
    this.checkBounds();
  }

  onReject(reason: FramingRejectReason): void {
    const tag = this.decoded++;
    this.report.frames++;
    this.growFates(tag);
    this.fates[tag]!++;
    this.report.fates.rejected[reason] = (this.report.fates.rejected[reason] ?? 0) + 1;
  }

  private consume(decision: Decision): void {
    for (const p of decision.release) this.fates[p.tag]!++;
    for (const p of decision.drop) this.fates[p.tag]!++;
    this.report.fates.released += decision.release.length;
    this.report.fates.dropped += decision.drop.length;
    if (decision.divergences.length > 0) {
      this.report.divergences += decision.divergences.length;
      if (!this.silent && this.flushAt === Infinity) this.flushAt = this.now + this.rng.between(5, 50);
    }
  }

  /** Virtual time moves on a little per batch, now and then by a long gap; ticks, timer and checkpoints follow. */
  private advanceClock(): void {
    const rng = this.rng;
    this.now += rng.chance(0.001) ? rng.between(5_000, 120_000) : rng.below(20);
    if (rng.chance(0.0005)) this.silent = !this.silent;
    while (this.nextTick <= this.now) {
      this.call(() => this.engine.tick(this.nextTick));
      this.nextTick += this.engineOptions.expiredScanCycleMs;
    }
    if (this.nextTimer <= this.now && !this.silent && this.flushAt === Infinity) this.flushAt = this.now;
    if (this.flushAt <= this.now) {
      this.flushAt = Infinity;
      this.nextTimer = this.now + 10_000;
      this.report.checkpoints++;
      this.call(() => this.engine.flush(this.now));
    }
  }

  private call(step: () => Decision): void {
    try {
      this.consume(step());
    } catch (err) {
      this.fail(this.decoded, 'framing', Buffer.alloc(0), err);
    }
  }

  private checkBounds(): void {
    const s = this.engine.stats();
    const o = this.engineOptions;
    const held = s.heldPrimaryPackets + s.heldSecondaryPackets;
    if (held > this.report.peakHeldFrames) this.report.peakHeldFrames = held;
    if (s.connections > this.report.peakConnections) this.report.peakConnections = s.connections;
    if (
      s.heldPrimaryPackets > o.maxHeldFramesPerSide ||
      s.heldSecondaryPackets > o.maxHeldFramesPerSide ||
      s.heldPrimaryBytes > o.maxHeldBytesPerSide ||
      s.heldSecondaryBytes > o.maxHeldBytesPerSide ||
      held > o.maxHeldFrames ||
      s.heldPrimaryBytes + s.heldSecondaryBytes > o.maxHeldBytes ||
      s.connections > o.maxConnections
    ) {
      this.report.boundViolations++;
    }
  }

  private newEngine(): void {
    const tight = this.report.engines % 2 === 1;
    this.engine = new CompareEngine(tight ? TIGHT : {});
    this.engineOptions = this.engine.options;
    this.report.engines++;
    this.nextTick = this.now + this.engineOptions.expiredScanCycleMs;
    this.nextTimer = this.now + 10_000;
    this.flushAt = Infinity;
  }

  /** Counts what is still held, then a last checkpoint releases it (so each frame's fate is final). */
  private endEngine(): void {
    const s = this.engine.stats();
    this.report.fates.heldAtEnd += s.heldPrimaryPackets + s.heldSecondaryPackets;
    this.report.fates.boundReleased += s.heldBoundReleased;
    this.report.fates.boundDropped += s.heldBoundDropped;
    this.report.fates.connectionsRefused += s.connectionsRefused;
    const decision = this.engine.flush(this.now);
    for (const p of decision.release) this.fates[p.tag]!++;
    for (const p of decision.drop) this.fates[p.tag]!++;
  }

  /** Every decoded frame met exactly one fate, and the sums agree. */
  private account(): void {
    let wrong = 0;
    for (let tag = 0; tag < this.decoded; tag++) if (this.fates[tag] !== 1) wrong++;
    const f = this.report.fates;
    const rejected = Object.values(f.rejected).reduce((a, b) => a + (b ?? 0), 0);
    const byCount = this.report.frames - (f.released + f.dropped + f.malformed + rejected + f.heldAtEnd);
    this.report.unaccounted = Math.max(wrong, Math.abs(byCount)) + this.report.framingMismatches;
  }

  private growFates(tag: number): void {
    if (tag < this.fates.length) return;
    const next = new Uint8Array(this.fates.length * 2);
    next.set(this.fates);
    this.fates = next;
  }

  private checkTime(started: number, index: number, side: Side | 'framing'): void {
    const ms = performance.now() - started;
    if (ms <= this.boundMs) return;
    this.report.hangs++;
    this.record(index, side, this.lastInput, `took ${ms.toFixed(0)} ms (bound ${this.boundMs} ms)`);
  }

  private fail(index: number, side: Side | 'framing', input: Buffer, err: unknown): void {
    this.report.crashes++;
    this.record(index, side, input, err instanceof Error ? (err.stack ?? err.message) : String(err));
  }

  private record(index: number, side: Side | 'framing', input: Buffer, error: string): void {
    if (this.report.failures.length >= 20) return;
    this.report.failures.push({ seed: this.options.seed, index, side, input: input.toString('hex'), error });
  }
}
