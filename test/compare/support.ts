import { CompareEngine, type CompareOptions, type Decision } from '../../compare/engine.js';
import type { Divergence, MalformedFrame, Packet, Side } from '../../compare/types.js';
import { buildTcp, buildUdp, type TcpSpec, type UdpSpec } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';

export const { ACK, SYN, FIN, RST, PSH } = TcpFlag;

/** A TCP segment from the guest (10.0.0.2:80) to the client (10.0.0.1:40000), ACK set unless flags say. */
export function tcp(seq: number, payload: string | Buffer = '', over: Partial<TcpSpec> = {}): Buffer {
  return buildTcp({
    src: '10.0.0.2',
    dst: '10.0.0.1',
    srcPort: 80,
    dstPort: 40000,
    seq,
    ack: 1000,
    flags: ACK,
    payload,
    ...over,
  });
}

export function udp(payload: string | Buffer, over: Partial<UdpSpec> = {}): Buffer {
  return buildUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload, ...over });
}

/** What one call decided, copied out of the engine's reused Decision. */
export interface Outcome {
  released: Packet[];
  dropped: Packet[];
  divergences: Divergence[];
  malformed: MalformedFrame[];
}

export function copy(decision: Decision): Outcome {
  return {
    released: [...decision.release],
    dropped: [...decision.drop],
    divergences: [...decision.divergences],
    malformed: [...decision.malformed],
  };
}

/** Drives an engine and accumulates every decision, so tests can assert on the whole history. */
export class Harness {
  readonly engine: CompareEngine;
  readonly released: Packet[] = [];
  readonly dropped: Packet[] = [];
  readonly divergences: Divergence[] = [];
  readonly malformed: MalformedFrame[] = [];
  now = 0;

  constructor(options: Partial<CompareOptions> = {}) {
    this.engine = new CompareEngine(options);
  }

  push(side: Side, frame: Buffer, tag = 0): Outcome {
    return this.record(this.engine.push(side, frame, 0, this.now, tag));
  }

  primary(frame: Buffer, tag = 0): Outcome {
    return this.push('primary', frame, tag);
  }

  secondary(frame: Buffer, tag = 0): Outcome {
    return this.push('secondary', frame, tag);
  }

  tick(now: number): Outcome {
    this.now = now;
    return this.record(this.engine.tick(now));
  }

  flush(): Outcome {
    return this.record(this.engine.flush(this.now));
  }

  /** Frames released so far, as the buffers pushed. */
  get releasedFrames(): Buffer[] {
    return this.released.map((p) => p.frame);
  }

  private record(decision: Decision): Outcome {
    const outcome = copy(decision);
    this.released.push(...outcome.released);
    this.dropped.push(...outcome.dropped);
    this.divergences.push(...outcome.divergences);
    this.malformed.push(...outcome.malformed);
    return outcome;
  }
}
