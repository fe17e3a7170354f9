import type { Decision, Divergence, Packet, Side } from '../../compare/types.js';
import type { CompareEngineLike } from '../../proxy/compare-loop-types.js';
import type { FramedSocket } from '../../proxy/ports/framed-socket.js';
import { FrameDecoder } from '../../proxy/ports/framed.js';
import { CollectingSink } from '../ports/support.js';

/** The compare loop's unit tests' stand-ins: a scripted engine, packets and divergences, a fake outdev. */

/** A scripted engine: each call returns the next prepared decision (or an empty one). */
export class ScriptedEngine implements CompareEngineLike {
  readonly pushes: [Side, string][] = [];
  script: Partial<Decision>[] = [];
  flushes = 0;
  throwOnPush = false;
  private next(): Decision {
    const d = this.script.shift() ?? {};
    return { release: d.release ?? [], drop: d.drop ?? [], divergences: d.divergences ?? [], malformed: [] };
  }
  push(side: Side, frame: Buffer): Decision {
    if (this.throwOnPush) throw new Error('engine bug');
    this.pushes.push([side, frame.toString()]);
    return this.next();
  }
  tick(): Decision {
    return this.next();
  }
  flush(): Decision {
    this.flushes++;
    return this.next();
  }
}

/** A primary packet; `tag` is its arrival number (the loop numbers primary frames from 1). */
export const packet = (text: string, tag = 0, passedByRule?: boolean): Packet => ({
  frame: Buffer.from(text),
  start: 0,
  side: 'primary',
  arrivedAt: 0,
  tag,
  ...(passedByRule === undefined ? {} : { passedByRule }),
});
export const divergence = (reason: Divergence['reason']): Divergence => ({
  time: 0,
  connection: { protocol: 'udp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2 },
  protocol: 'udp',
  reason,
  offset: 0,
  primary: null,
  secondary: null,
  detail: 'test',
});

/** Stands in for the outdev FramedSocket: decodes what the loop writes. */
export function fakeOutdev() {
  const sink = new CollectingSink();
  const decoder = new FrameDecoder(false, sink);
  const socket = {
    backlog: 0,
    write(data: Buffer) {
      decoder.push(Buffer.from(data));
      return true;
    },
    on() {},
    pause() {},
    resume() {},
  };
  return { sink, socket: socket as unknown as FramedSocket };
}
