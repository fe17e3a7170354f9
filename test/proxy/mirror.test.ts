import { describe, expect, it } from 'vitest';
import { buildTcp, buildUdp } from '../support/wire-build.js';
import { dissect, dissectFrame } from '../../compare/wire/dissect.js';
import { FrameInfo, TcpFlag } from '../../compare/wire/frame-info.js';
import { Mirror } from '../../proxy/mirror.js';
import { MemoryPort } from '../../proxy/port.js';
import { SeqRewriter } from '../../proxy/rewriter.js';

const { SYN, ACK, PSH } = TcpFlag;
const C = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80 };
const V = { src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000 };
const PRI_ISN = 5000;
const SEC_ISN = 900_000;

function setup() {
  const primary = new MemoryPort();
  const secondary = new MemoryPort();
  const rewriter = new SeqRewriter();
  const mirror = new Mirror(primary, secondary, rewriter, 16);
  mirror.targets = 'both';
  const info = new FrameInfo();
  const client = (frame: Buffer) => mirror.onClientFrame(frame, dissectFrame(frame, info), 0);
  const vm = (side: 'primary' | 'secondary', frame: Buffer) => {
    expect(dissect(frame, 0, frame.length, info)).toBeNull();
    if (side === 'primary') mirror.fromPrimary(info, 0);
    else mirror.fromSecondary(frame, info, 0);
  };
  return { primary, secondary, rewriter, mirror, client, vm };
}

const acks = (port: MemoryPort) =>
  port.sent.map((f) => {
    const info = new FrameInfo();
    dissect(f, 0, f.length, info);
    return info.tcpAck;
  });

describe('Mirror: it sends what its rewriter releases', () => {
  it('sends the client frames held for the offset to the secondary, in order, during the VM frame that taught it', () => {
    const h = setup();
    h.client(buildTcp({ ...C, seq: 100, ack: 0, flags: SYN }));
    h.client(buildTcp({ ...C, seq: 101, ack: PRI_ISN + 1, flags: ACK }));
    h.client(buildTcp({ ...C, seq: 101, ack: PRI_ISN + 1, flags: ACK | PSH, payload: 'GET /' }));
    expect(h.primary.sent).toHaveLength(3);
    expect(h.secondary.sent).toHaveLength(1); // the SYN; the other two wait for the secondary's ISN
    expect(h.mirror.counters.heldForIsn).toBe(2);

    h.vm('primary', buildTcp({ ...V, seq: PRI_ISN, ack: 101, flags: SYN | ACK }));
    expect(h.secondary.sent).toHaveLength(1);
    h.vm('secondary', buildTcp({ ...V, seq: SEC_ISN, ack: 101, flags: SYN | ACK }));
    expect(acks(h.secondary)).toEqual([0, SEC_ISN + 1, SEC_ISN + 1]);
    expect(h.mirror.counters.toSecondary).toBe(3);
  });

  it('re-dissects the client frames it held during a checkpoint itself, and rewrites them for the secondary', () => {
    const h = setup();
    h.client(buildTcp({ ...C, seq: 100, ack: 0, flags: SYN }));
    h.vm('primary', buildTcp({ ...V, seq: PRI_ISN, ack: 101, flags: SYN | ACK }));
    h.vm('secondary', buildTcp({ ...V, seq: SEC_ISN, ack: 101, flags: SYN | ACK }));
    h.mirror.hold();
    h.client(buildTcp({ ...C, seq: 101, ack: PRI_ISN + 1, flags: ACK }));
    h.client(buildUdp({ src: C.src, dst: C.dst, srcPort: 5353, dstPort: 53, payload: 'q' }));
    expect(h.mirror.heldFrames).toBe(2);
    expect(h.mirror.release(0)).toBe(2);
    expect(h.secondary.sent).toHaveLength(3);
    expect(acks(h.secondary).slice(0, 2)).toEqual([0, SEC_ISN + 1]);
    expect(acks(h.primary).slice(0, 2)).toEqual([0, PRI_ISN + 1]);
  });
});
