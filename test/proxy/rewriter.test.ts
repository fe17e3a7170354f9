import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeTcpOptions } from '../../compare/wire/tcp.js';
import { buildTcp } from '../support/wire-build.js';
import { transportChecksumOk } from '../../compare/wire/checksum.js';
import { dissect } from '../../compare/wire/dissect.js';
import { FrameInfo, TcpFlag } from '../../compare/wire/frame-info.js';
import { defaultRewriterOptions, SeqRewriter, type ReleasedFrames } from '../../proxy/rewriter.js';

const CLIENT = { ip: '10.0.0.1', port: 40000 };
const VM = { ip: '10.0.0.2', port: 80 };
const { SYN, ACK, FIN, RST, PSH } = TcpFlag;

function fromClient(seq: number, ack: number, flags: number, payload = '', options?: Buffer): Buffer {
  return buildTcp({
    src: CLIENT.ip,
    dst: VM.ip,
    srcPort: CLIENT.port,
    dstPort: VM.port,
    seq,
    ack,
    flags,
    payload,
    options,
  });
}
function fromVm(seq: number, ack: number, flags: number, payload = ''): Buffer {
  return buildTcp({ src: VM.ip, dst: CLIENT.ip, srcPort: VM.port, dstPort: CLIENT.port, seq, ack, flags, payload });
}
function info(frame: Buffer): FrameInfo {
  const out = new FrameInfo();
  expect(dissect(frame, 0, frame.length, out)).toBeNull();
  return out;
}

/** Takes every frame the rewriter returned as released, as its owner (the mirror) does. */
function drain(released: ReleasedFrames, into: Buffer[]): void {
  for (let frame = released.shift(); frame !== undefined; frame = released.shift()) into.push(frame);
}

function harness() {
  const released: Buffer[] = [];
  const rewriter = new SeqRewriter();
  const toSecondary = (frame: Buffer, now = 0) => rewriter.toSecondary(frame, info(frame), now);
  const primary = (frame: Buffer, now = 0) => drain(rewriter.fromPrimary(info(frame), now), released);
  const secondary = (frame: Buffer, now = 0) => {
    drain(rewriter.fromSecondary(frame, info(frame), now), released);
    return info(frame);
  };
  return { rewriter, released, toSecondary, primary, secondary };
}

const CLIENT_ISN = 1000;
const PRI_ISN = 5000;
const SEC_ISN = 900_000;

/** A client-initiated handshake in which both VMs answered. */
function handshake(h: ReturnType<typeof harness>, priIsn = PRI_ISN, secIsn = SEC_ISN) {
  expect(h.toSecondary(fromClient(CLIENT_ISN, 0, SYN))).toBe('forward');
  h.primary(fromVm(priIsn, CLIENT_ISN + 1, SYN | ACK));
  h.secondary(fromVm(secIsn, CLIENT_ISN + 1, SYN | ACK));
}

describe('SeqRewriter: learning the offset from the handshake', () => {
  it('maps the secondary SYN|ACK and later output into the primary sequence space with valid checksums', () => {
    const h = harness();
    handshake(h);
    const data = h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 1, ACK | PSH, 'hello'));
    expect(data.tcpSeq).toBe(PRI_ISN + 1);
    expect(transportChecksumOk(data)).toBe(true);
    expect(h.rewriter.counters.offsetsLearned).toBe(1);
  });

  it("rewrites the client's ack toward the secondary, leaving the primary's copy alone", () => {
    const h = harness();
    handshake(h);
    const frame = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK);
    const primaryCopy = Buffer.from(frame);
    expect(h.toSecondary(frame)).toBe('forward');
    const rewritten = info(frame);
    expect(rewritten.tcpAck).toBe(SEC_ISN + 1);
    expect(transportChecksumOk(rewritten)).toBe(true);
    expect(info(primaryCopy).tcpAck).toBe(PRI_ISN + 1);
  });

  it('works across the 32-bit wrap (secondary ISN below the primary one)', () => {
    const h = harness();
    handshake(h, 0xfffffff0, 5);
    const frame = fromClient(CLIENT_ISN + 1, 0xfffffff1, ACK);
    h.toSecondary(frame);
    expect(info(frame).tcpAck).toBe(6);
    expect(h.secondary(fromVm(6, CLIENT_ISN + 1, ACK, 'x')).tcpSeq).toBe(0xfffffff1);
  });

  it('holds client frames to the secondary until its ISN is known, then releases them rewritten and in order', () => {
    const h = harness();
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    h.primary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    // The client answered the primary's SYN|ACK before the secondary's arrived.
    expect(h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK))).toBe('held');
    expect(h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK | PSH, 'GET /'))).toBe('held');
    expect(h.released).toHaveLength(0);
    h.secondary(fromVm(SEC_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.released.map((f) => info(f).tcpAck)).toEqual([SEC_ISN + 1, SEC_ISN + 1]);
    expect(info(h.released[1]).payloadLength).toBe(5);
    expect(h.released.every((f) => transportChecksumOk(info(f)))).toBe(true);
  });

  it('drops and counts client frames beyond the per-connection hold', () => {
    const rewriter = new SeqRewriter({ maxHeldPerConnection: 2 });
    const syn = fromClient(CLIENT_ISN, 0, SYN);
    rewriter.toSecondary(syn, info(syn), 0);
    const results = [0, 1, 2].map(() => {
      const f = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK);
      return rewriter.toSecondary(f, info(f), 0);
    });
    expect(results).toEqual(['held', 'held', 'dropped']);
    expect(rewriter.counters.heldOverflow).toBe(1);
  });

  it('learns VM-initiated connections from both SYNs and rewrites the client SYN|ACK', () => {
    const h = harness();
    h.primary(fromVm(PRI_ISN, 0, SYN));
    h.secondary(fromVm(SEC_ISN, 0, SYN));
    const synAck = fromClient(CLIENT_ISN, PRI_ISN + 1, SYN | ACK);
    expect(h.toSecondary(synAck)).toBe('forward');
    expect(info(synAck).tcpAck).toBe(SEC_ISN + 1);
  });

  it('rewrites SACK edges with the ack', () => {
    const h = harness();
    handshake(h);
    const sack = encodeTcpOptions([{ kind: 5, blocks: [[PRI_ISN + 101, PRI_ISN + 201]] }]);
    const frame = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK, '', sack);
    h.toSecondary(frame);
    const rewritten = info(frame);
    const edge = rewritten.l4Offset + 20 + sackEdgeOffset(frame, rewritten);
    expect(frame.readUInt32BE(edge)).toBe(SEC_ISN + 101);
    expect(frame.readUInt32BE(edge + 4)).toBe(SEC_ISN + 201);
    expect(transportChecksumOk(rewritten)).toBe(true);
  });

  it('maps TCP timestamps between the VMs: TSecr toward the secondary, TSval out of it', () => {
    const h = harness();
    const ts = (value: number, echo: number) => encodeTcpOptions([{ kind: 8, value, echo }]);
    const vm = (seq: number, flags: number, options: Buffer, payload = '') =>
      buildTcp({
        src: VM.ip,
        dst: CLIENT.ip,
        srcPort: VM.port,
        dstPort: CLIENT.port,
        seq,
        ack: CLIENT_ISN + 1,
        flags,
        payload,
        options,
      });
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN, '', ts(777, 0)));
    h.primary(vm(PRI_ISN, SYN | ACK, ts(1_000_000, 777)));
    h.secondary(vm(SEC_ISN, SYN | ACK, ts(4_000_000_000, 777)));
    // The client echoes the primary's TSval; the secondary must see its own.
    const ack = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK, '', ts(778, 1_000_000));
    h.toSecondary(ack);
    const ackInfo = info(ack);
    const tsAt = (f: Buffer, i: FrameInfo) => i.l4Offset + 20 + sackEdgeOffsetOf(f, i, 8);
    expect(ack.readUInt32BE(tsAt(ack, ackInfo) + 4)).toBe(4_000_000_000);
    expect(ack.readUInt32BE(tsAt(ack, ackInfo))).toBe(778);
    expect(transportChecksumOk(ackInfo)).toBe(true);
    // The secondary's later TSval comes out on the primary's clock (wrapping past 2^32 on the way).
    const data = vm(SEC_ISN + 1, ACK | PSH, ts((4_000_000_000 + 300_000_000) % 2 ** 32, 778), 'x');
    const out = h.secondary(data);
    expect(data.readUInt32BE(tsAt(data, out))).toBe(301_000_000);
    expect(transportChecksumOk(out)).toBe(true);
    // The secondary's SYN|ACK, the client's ACK and the secondary's data.
    expect(h.rewriter.counters.tsRewritten).toBe(3);
  });

  it('passes frames of connections it never saw open unchanged (offset 0: the secondary is a clone)', () => {
    const h = harness();
    const frame = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK);
    const before = Buffer.from(frame);
    expect(h.toSecondary(frame)).toBe('forward');
    expect(frame.equals(before)).toBe(true);
  });
});

describe('SeqRewriter: teardown, checkpoints, forgetting', () => {
  it('tracks teardown in the primary space and forgets the connection after the linger time', () => {
    const h = harness();
    handshake(h);
    h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, FIN | ACK));
    h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 2, FIN | ACK), 10);
    // The last ACK still needs rewriting while closing.
    const lastAck = fromClient(CLIENT_ISN + 2, PRI_ISN + 2, ACK);
    h.toSecondary(lastAck, 20);
    expect(info(lastAck).tcpAck).toBe(SEC_ISN + 2);
    expect(h.rewriter.offsets()[0].phase).toBe('closing');
    h.rewriter.sweep(10 + 4999);
    expect(h.rewriter.size).toBe(1);
    h.rewriter.sweep(10 + 5000);
    expect(h.rewriter.size).toBe(0);
  });

  it('closes on RST from either side', () => {
    const h = harness();
    handshake(h);
    h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 1, RST), 7);
    expect(h.rewriter.offsets()[0].phase).toBe('closing');
  });

  it('zeroes every offset after a checkpoint when the secondary became a clone, and keeps them otherwise', () => {
    const h = harness();
    handshake(h);
    h.rewriter.onCheckpoint(false);
    expect(h.rewriter.offsets()[0].offset).toBe(SEC_ISN - PRI_ISN);
    h.rewriter.onCheckpoint(true);
    expect(h.rewriter.offsets()[0].offset).toBe(0);
    const frame = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK);
    h.toSecondary(frame);
    expect(info(frame).tcpAck).toBe(PRI_ISN + 1);
  });

  it('ends learning at a cloning checkpoint: a handshake the lost secondary never answered gets offset 0', () => {
    // The secondary died before its SYN|ACK and the pair was re-seeded mid-transfer: the clone has the primary's
    // TCP state and never answers that SYN again.
    const h = harness();
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    h.primary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK))).toBe('held');
    expect(h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK | PSH, 'GET /'))).toBe('held');

    h.rewriter.onCheckpoint(true);
    // The primary had those two frames, so the clone has them: they are not sent again.
    expect(h.released).toEqual([]);
    expect(h.rewriter.counters.heldAbandoned).toBe(2);
    expect(h.rewriter.offsets()[0]).toMatchObject({ phase: 'established', offset: 0 });
    const ack = fromClient(CLIENT_ISN + 6, PRI_ISN + 1461, ACK);
    expect(h.toSecondary(ack)).toBe('forward');
    expect(info(ack).tcpAck).toBe(PRI_ISN + 1461);
    // The clone's output goes to the comparison, in the primary's space as it is.
    const data = h.secondary(fromVm(PRI_ISN + 1461, CLIENT_ISN + 6, ACK, 'x'.repeat(100)));
    expect(h.rewriter.secondaryHeld).toBe(false);
    expect(data.tcpSeq).toBe(PRI_ISN + 1461);
  });

  it('forgets the replaced secondary ISN at a cloning checkpoint before the primary answered', () => {
    const h = harness();
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    h.secondary(fromVm(SEC_ISN, CLIENT_ISN + 1, SYN | ACK));
    h.rewriter.onCheckpoint(true);
    // Both VMs now answer from the same state, with the same ISN.
    h.primary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.rewriter.offsets()[0].phase).toBe('learning');
    h.secondary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.rewriter.offsets()[0]).toMatchObject({ phase: 'established', offset: 0 });
  });

  it('keeps learning across a checkpoint that does not clone the VMs', () => {
    const h = harness();
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    h.primary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK))).toBe('held');
    h.rewriter.onCheckpoint(false);
    expect(h.rewriter.offsets()[0].phase).toBe('learning');
    h.secondary(fromVm(SEC_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.released.map((f) => info(f).tcpAck)).toEqual([SEC_ISN + 1]);
  });

  it('restarts learning when a client SYN reuses the port of a closed connection', () => {
    const h = harness();
    handshake(h);
    h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, RST));
    handshake(h, 7000, 8000);
    const frame = fromClient(CLIENT_ISN + 1, 7001, ACK);
    h.toSecondary(frame);
    expect(info(frame).tcpAck).toBe(8001);
  });

  it('property: any ISN pair maps secondary seqs onto primary seqs and client acks back, checksums valid', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.nat(1 << 20),
        (pri, sec, delta) => {
          const h = harness();
          handshake(h, pri, sec);
          const out = h.secondary(fromVm((sec + 1 + delta) >>> 0, CLIENT_ISN + 1, ACK, 'abc'));
          const ack = fromClient(CLIENT_ISN + 1, (pri + 1 + delta) >>> 0, ACK);
          h.toSecondary(ack);
          return (
            out.tcpSeq === (pri + 1 + delta) >>> 0 &&
            info(ack).tcpAck === (sec + 1 + delta) >>> 0 &&
            transportChecksumOk(out) &&
            transportChecksumOk(info(ack))
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Offset of the first SACK edge within the TCP options (throws when there is no SACK option). */
function sackEdgeOffset(frame: Buffer, i: FrameInfo): number {
  return sackEdgeOffsetOf(frame, i, 5);
}

/** Offset of the data (after kind and length) of the first option of `kind` within the TCP options. */
function sackEdgeOffsetOf(frame: Buffer, i: FrameInfo, kind: number): number {
  const end = i.l4Offset + i.tcpHeaderLength;
  let at = i.l4Offset + 20;
  while (at < end && frame[at] !== kind) {
    const step = frame[at] === 1 ? 1 : frame[at + 1];
    if (step < 1) break;
    at += step;
  }
  if (at >= end || frame[at] !== kind) throw new Error(`no option ${kind} in the frame`);
  return at + 2 - (i.l4Offset + 20);
}

describe('SeqRewriter: acks toward a secondary that is behind', () => {
  it('lowers an ack beyond what the secondary sent to the end of what it sent, with a valid checksum', () => {
    const h = harness();
    handshake(h);
    h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 1, ACK | PSH, 'abcd'));
    // The client acknowledges 10 bytes the primary sent; the secondary has sent 4.
    const frame = fromClient(CLIENT_ISN + 1, PRI_ISN + 11, ACK);
    h.toSecondary(frame);
    const rewritten = info(frame);
    expect(rewritten.tcpAck).toBe(SEC_ISN + 5);
    expect(transportChecksumOk(rewritten)).toBe(true);
    expect(h.rewriter.counters.ackClamped).toBe(1);

    // Once the secondary has sent the rest, the same ack passes whole.
    h.secondary(fromVm(SEC_ISN + 5, CLIENT_ISN + 1, ACK | PSH, 'efghij'));
    const later = fromClient(CLIENT_ISN + 1, PRI_ISN + 11, ACK);
    h.toSecondary(later);
    expect(info(later).tcpAck).toBe(SEC_ISN + 11);
    expect(h.rewriter.counters.ackClamped).toBe(1);
  });

  it('keeps the highest end: a retransmission of older bytes does not lower it', () => {
    const h = harness();
    handshake(h);
    h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 1, ACK | PSH, 'abcdefgh'));
    h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 1, ACK | PSH, 'ab'));
    const frame = fromClient(CLIENT_ISN + 1, PRI_ISN + 9, ACK);
    h.toSecondary(frame);
    expect(info(frame).tcpAck).toBe(SEC_ISN + 9);
    expect(h.rewriter.counters.ackClamped).toBe(0);
  });

  it('counts a FIN as sent, and forgets the end when a checkpoint makes the secondary a clone', () => {
    const h = harness();
    handshake(h);
    h.secondary(fromVm(SEC_ISN + 1, CLIENT_ISN + 1, ACK | FIN, 'ab'));
    const finAck = fromClient(CLIENT_ISN + 1, PRI_ISN + 4, ACK);
    h.toSecondary(finAck);
    expect(info(finAck).tcpAck).toBe(SEC_ISN + 4);

    h.rewriter.onCheckpoint(true);
    // Offsets are 0 now and nothing the secondary sent since is known: the client's ack passes unchanged.
    const afterClone = fromClient(CLIENT_ISN + 1, PRI_ISN + 50, ACK);
    h.toSecondary(afterClone);
    expect(info(afterClone).tcpAck).toBe(PRI_ISN + 50);
    expect(h.rewriter.counters.ackClamped).toBe(0);
  });
});

describe('SeqRewriter: what it releases is its result', () => {
  it('returns the held client frames from the VM frame that taught it the offset, and nothing from the others', () => {
    // No output is passed in: the only way a held frame can leave is as a call's result.
    const rewriter = new SeqRewriter();
    const send = (frame: Buffer) => rewriter.toSecondary(frame, info(frame), 0);
    expect(send(fromClient(CLIENT_ISN, 0, SYN))).toBe('forward');
    const ack = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK);
    const data = fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK | PSH, 'GET /');
    expect([send(ack), send(data)]).toEqual(['held', 'held']);

    const synAck = fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK);
    const afterPrimary = rewriter.fromPrimary(info(synAck), 0);
    expect(afterPrimary.length).toBe(0);
    const secondarySynAck = fromVm(SEC_ISN, CLIENT_ISN + 1, SYN | ACK);
    const afterSecondary = rewriter.fromSecondary(secondarySynAck, info(secondarySynAck), 0);
    expect(afterSecondary.length).toBe(2);
    // In the order they were held, already rewritten for the secondary.
    const first = afterSecondary.shift()!;
    const second = afterSecondary.shift()!;
    expect(afterSecondary.shift()).toBeUndefined();
    expect([first, second]).toEqual([ack, data]);
    expect(info(second).tcpAck).toBe(SEC_ISN + 1);
    expect(transportChecksumOk(info(second))).toBe(true);

    // The result is one reused queue (no allocation per call), empty once taken.
    const later = fromVm(SEC_ISN + 1, CLIENT_ISN + 1, ACK, 'x');
    const afterData = rewriter.fromSecondary(later, info(later), 0);
    expect(afterData).toBe(afterSecondary);
    expect(afterData.length).toBe(0);
  });

  it('releases from the primary SYN|ACK when the secondary answered first', () => {
    const h = harness();
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    h.secondary(fromVm(SEC_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.toSecondary(fromClient(CLIENT_ISN + 1, PRI_ISN + 1, ACK))).toBe('held');
    expect(h.released).toHaveLength(0);
    h.primary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.released.map((f) => info(f).tcpAck)).toEqual([SEC_ISN + 1]);
  });
});

describe('SeqRewriter: its connection table', () => {
  const V6 = { client: 'fd00::1', vm: 'fd00::2' };
  const v6 = (fromClientSide: boolean, seq: number, ack: number, flags: number, clientPort = 40000) =>
    buildTcp({
      src: fromClientSide ? V6.client : V6.vm,
      dst: fromClientSide ? V6.vm : V6.client,
      srcPort: fromClientSide ? clientPort : 80,
      dstPort: fromClientSide ? 80 : clientPort,
      seq,
      ack,
      flags,
    });

  it('keys IPv6 connections by both full addresses and ports, whichever way the frame goes', () => {
    const h = harness();
    for (const [port, secIsn] of [
      [40000, SEC_ISN],
      [40001, SEC_ISN + 5000],
    ]) {
      h.toSecondary(v6(true, CLIENT_ISN, 0, SYN, port));
      h.primary(v6(false, PRI_ISN, CLIENT_ISN + 1, SYN | ACK, port));
      h.secondary(v6(false, secIsn, CLIENT_ISN + 1, SYN | ACK, port));
    }
    expect(h.rewriter.size).toBe(2);
    expect(h.rewriter.offsets().map((o) => o.offset)).toEqual([SEC_ISN - PRI_ISN, SEC_ISN + 5000 - PRI_ISN]);
    const ack = v6(true, CLIENT_ISN + 1, PRI_ISN + 1, ACK, 40001);
    h.toSecondary(ack);
    expect(info(ack).tcpAck).toBe(SEC_ISN + 5000 + 1);
    // An IPv4 connection with the same ports is another connection.
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    expect(h.rewriter.size).toBe(3);
  });

  it('reuses the slot of a forgotten connection for the next one (keys do not leak)', () => {
    const h = harness();
    for (let port = 1; port <= 200; port++) {
      h.toSecondary(
        buildTcp({ src: CLIENT.ip, dst: VM.ip, srcPort: port, dstPort: VM.port, seq: 1, ack: 0, flags: SYN }),
        port,
      );
      h.rewriter.sweep(port + defaultIdleMs());
    }
    expect(h.rewriter.size).toBe(0);
    expect(h.rewriter.counters.connectionsForgotten).toBe(200);
    // The last one is still found by its key after 199 slot reuses.
    h.toSecondary(fromClient(CLIENT_ISN, 0, SYN));
    h.primary(fromVm(PRI_ISN, CLIENT_ISN + 1, SYN | ACK));
    h.secondary(fromVm(SEC_ISN, CLIENT_ISN + 1, SYN | ACK));
    expect(h.rewriter.offsets()).toEqual([
      expect.objectContaining({ offset: SEC_ISN - PRI_ISN, phase: 'established' }),
    ]);
  });
});

function defaultIdleMs(): number {
  return defaultRewriterOptions.idleMs;
}
