import type { Packet, Side } from './types.js';
import type { FrameInfo } from './wire/frame-info.js';

/**
 * A pushed frame plus the dissected fields the comparators need, copied once from the shared FrameInfo so
 * the frame never has to be dissected again. One class for every protocol keeps property access
 * monomorphic on the hot path. It is also what the engine hands back in `release` and `drop`.
 */
export class HeldPacket implements Packet {
  readonly frame: Buffer;
  readonly start: number;
  readonly side: Side;
  readonly arrivedAt: number;
  readonly tag: number;
  /** Bytes from `start` to the end of the frame: what the held-bytes statistics count. */
  readonly byteLength: number;
  readonly ipVersion: number;
  readonly ipProtocol: number;
  readonly l3Offset: number;
  readonly l3HeaderLength: number;
  readonly l3End: number;
  readonly l4Offset: number;
  readonly srcAddrOffset: number;
  readonly dstAddrOffset: number;
  readonly addrLength: number;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly tcpFlags: number;
  readonly payloadOffset: number;
  readonly payloadLength: number;
  /** TCP: set once a RST on this segment was matched by the other side's RST at the same stream position. */
  rstMatched = false;

  constructor(frame: Buffer, start: number, side: Side, arrivedAt: number, tag: number, info: FrameInfo) {
    this.frame = frame;
    this.start = start;
    this.side = side;
    this.arrivedAt = arrivedAt;
    this.tag = tag;
    this.byteLength = frame.length - start;
    this.ipVersion = info.ipVersion;
    this.ipProtocol = info.ipProtocol;
    this.l3Offset = info.l3Offset;
    this.l3HeaderLength = info.l3HeaderLength;
    this.l3End = info.l3End;
    this.l4Offset = info.l4Offset;
    this.srcAddrOffset = info.srcAddrOffset;
    this.dstAddrOffset = info.dstAddrOffset;
    this.addrLength = info.addrLength;
    this.srcPort = info.srcPort;
    this.dstPort = info.dstPort;
    this.seq = info.tcpSeq;
    this.ack = info.tcpAck;
    this.tcpFlags = info.tcpFlags;
    this.payloadOffset = info.payloadOffset;
    this.payloadLength = info.payloadLength;
  }
}
