/**
 * InlineProxy.shutdown() (`colo-proxy run` on SIGTERM, issue 17 finding 5): every held primary frame, in the
 * engine and in the gate, reaches the client port before the ports close, and primary frames that arrive
 * after it pass through instead of being held by a proxy that will never flush again.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { buildTcp } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { InlineProxy, type InlineCheckpointEngine, type InlineLossEvent } from '../../proxy/inline.js';
import { MemoryPort } from '../../proxy/port.js';

const { SYN, ACK, PSH } = TcpFlag;
const C = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80 };
const V = { src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000 };

/** A checkpoint engine whose checkpoints never finish (a peer that stopped answering). */
class StuckEngine
  extends EventEmitter<{
    ready: [event: { peer: string; extensions: boolean }];
    'secondary-lost': [event: InlineLossEvent];
    'primary-lost': [event: InlineLossEvent];
  }>
  implements InlineCheckpointEngine
{
  isProtected = true;
  checkpoint(): Promise<{ ok: boolean; reason: string }> {
    return new Promise(() => undefined);
  }
}

const reply = (seq: number, payload: string) => buildTcp({ ...V, seq, ack: 106, flags: ACK | PSH, payload });

describe('InlineProxy shutdown', () => {
  it('flushes the engine and the gate to the client, then lets later primary frames through', () => {
    const proxy = new InlineProxy(new StuckEngine(), { checkpointTimerMs: 0 }, () => 0);
    const ports = { client: new MemoryPort(), primary: new MemoryPort(), secondary: new MemoryPort() };
    proxy.attach(ports);
    proxy.sinks.client.onFrame(buildTcp({ ...C, seq: 100, ack: 0, flags: SYN }), 0);
    proxy.sinks.primary.onFrame(buildTcp({ ...V, seq: 5000, ack: 101, flags: SYN | ACK }), 0);
    proxy.sinks.secondary.onFrame(buildTcp({ ...V, seq: 9000, ack: 101, flags: SYN | ACK }), 0);
    const before = ports.client.sent.length;
    // A divergence starts a checkpoint that never ends: the gate holds, the engine holds the diverged connection.
    proxy.sinks.primary.onFrame(reply(5001, 'AAAA'), 0);
    proxy.sinks.secondary.onFrame(reply(9001, 'BBBB'), 0);
    proxy.sinks.primary.onFrame(reply(5005, 'CCCC'), 0);
    expect(ports.client.sent.length).toBe(before);

    expect(proxy.shutdown()).toEqual({ flushedFrames: 2, sendFailures: 0 });
    expect(ports.client.sent.slice(before)).toEqual([reply(5001, 'AAAA'), reply(5005, 'CCCC')]);
    proxy.sinks.primary.onFrame(reply(5009, 'DDDD'), 0);
    expect(ports.client.sent.at(-1)).toEqual(reply(5009, 'DDDD'));
  });
});
