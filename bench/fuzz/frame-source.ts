/**
 * Frames for the framing + engine campaign: plausible traffic from a few dozen flows (TCP streams with
 * advancing sequence numbers, UDP, ICMP, ICMPv6, ARP, other IP, IPv6 extension chains, other EtherTypes),
 * a twin for the secondary most of the time, and each copy mutated independently: random bytes, cut
 * headers, bad IPv4/TCP options and header lengths, lying length fields, deep VLAN stacks, pure noise.
 */
import {
  buildArp,
  buildEthernet,
  buildIcmp,
  buildIcmpv6,
  buildIpRaw,
  buildTcp,
  buildUdp,
} from '../../test/support/wire-build.js';
import type { Rng } from './rng.js';

export type Mutation =
  | 'none'
  | 'flip'
  | 'truncate'
  | 'cut-header'
  | 'ip-options'
  | 'ip-header-length'
  | 'tcp-options'
  | 'tcp-data-offset'
  | 'length-field'
  | 'vlan-stack'
  | 'noise'
  | 'append';

/** Mutations, each with its weight; 'none' keeps the comparison busy with frames that do match. */
const MUTATIONS: ReadonlyArray<[Mutation, number]> = [
  ['none', 40],
  ['flip', 12],
  ['truncate', 6],
  ['cut-header', 6],
  ['ip-options', 6],
  ['ip-header-length', 4],
  ['tcp-options', 6],
  ['tcp-data-offset', 4],
  ['length-field', 4],
  ['vlan-stack', 5],
  ['noise', 4],
  ['append', 3],
];
const MUTATION_TOTAL = MUTATIONS.reduce((sum, [, w]) => sum + w, 0);

/** Where the IP header starts in an untagged frame, and the TPIDs a VLAN stack may use. */
const IP_OFFSET = 14;
const TPIDS = [0x8100, 0x88a8, 0x9100];

interface Flow {
  v6: boolean;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
}

export interface FramePair {
  primary: Buffer;
  /** The secondary's copy, or null when the secondary sends nothing for it. */
  secondary: Buffer | null;
  primaryMutation: Mutation;
  secondaryMutation: Mutation;
}

export class FrameSource {
  private readonly flows: Flow[] = [];

  constructor(
    private readonly rng: Rng,
    private readonly flowCount = 48,
  ) {
    for (let i = 0; i < flowCount; i++) this.flows.push(this.newFlow());
  }

  next(): FramePair {
    const rng = this.rng;
    // Flows come and go, so the connection table keeps filling and evicting.
    if (rng.chance(0.01)) this.flows[rng.below(this.flowCount)] = this.newFlow();
    const base = this.base(rng.pick(this.flows));
    const twin = rng.chance(0.85);
    const primaryMutation = this.pickMutation();
    const secondaryMutation = twin && rng.chance(0.5) ? this.pickMutation() : 'none';
    return {
      primary: this.mutate(base, primaryMutation),
      secondary: twin ? this.mutate(base, secondaryMutation) : null,
      primaryMutation,
      secondaryMutation,
    };
  }

  private newFlow(): Flow {
    const rng = this.rng;
    const v6 = rng.chance(0.3);
    const host = (): string =>
      v6 ? `2001:db8::${rng.below(0xffff).toString(16)}` : `10.${rng.below(4)}.${rng.below(256)}.${rng.below(256)}`;
    return {
      v6,
      src: host(),
      dst: host(),
      srcPort: rng.between(1, 65535),
      dstPort: rng.pick([80, 443, 53, 22, rng.between(1024, 65535)]),
      seq: rng.u32(),
      ack: rng.u32(),
    };
  }

  private base(flow: Flow): Buffer {
    const rng = this.rng;
    const ip = { src: flow.src, dst: flow.dst, ttl: 64, ipId: rng.below(65536) };
    const kind = rng.below(100);
    if (kind < 55) {
      const payload = rng.chance(0.3) ? Buffer.alloc(0) : rng.bytes(rng.between(1, 1400));
      // SYN, FIN and RST now and then; mostly ACK and PSH|ACK.
      const flags = rng.pick([0x10, 0x18, 0x18, 0x10, 0x02, 0x12, 0x11, 0x04, 0x14]);
      const frame = buildTcp({
        ...ip,
        srcPort: flow.srcPort,
        dstPort: flow.dstPort,
        seq: flow.seq,
        ack: flow.ack,
        flags,
        payload,
      });
      flow.seq = (flow.seq + payload.length + (flags & 0x03 ? 1 : 0)) >>> 0;
      if (rng.chance(0.2)) flow.ack = (flow.ack + rng.below(3000)) >>> 0;
      return frame;
    }
    if (kind < 75)
      return buildUdp({ ...ip, srcPort: flow.srcPort, dstPort: flow.dstPort, payload: rng.bytes(rng.below(600)) });
    if (kind < 82) {
      const icmp = { ...ip, id: flow.srcPort, seq: rng.below(65536), payload: rng.bytes(rng.below(64)) };
      return flow.v6 ? buildIcmpv6(icmp) : buildIcmp(icmp);
    }
    if (kind < 86) {
      return buildArp({ operation: rng.between(1, 2), senderIp: '10.0.0.1', targetIp: `10.0.0.${rng.below(256)}` });
    }
    if (kind < 91)
      return buildIpRaw({ ...ip, protocol: rng.pick([47, 50, 132, 255, 0]), payload: rng.bytes(rng.below(200)) });
    if (kind < 95 && flow.v6) {
      const extensions = [{ type: rng.pick([0, 43, 60] as const), data: rng.bytes(rng.between(6, 30)) }];
      return buildUdp({
        ...ip,
        extensions,
        srcPort: flow.srcPort,
        dstPort: flow.dstPort,
        payload: rng.bytes(rng.below(100)),
      });
    }
    return buildEthernet({
      etherType: rng.pick([0x88cc, 0x8863, 0x1234, 0x0800, 0x86dd]),
      payload: rng.bytes(rng.below(100)),
    });
  }

  private pickMutation(): Mutation {
    let r = this.rng.below(MUTATION_TOTAL);
    for (const [mutation, weight] of MUTATIONS) {
      if (r < weight) return mutation;
      r -= weight;
    }
    return 'none';
  }

  /** A mutated copy of `frame` (the base is shared by both sides, so it is never changed in place). */
  private mutate(frame: Buffer, mutation: Mutation): Buffer {
    const rng = this.rng;
    const out = Buffer.from(frame);
    switch (mutation) {
      case 'none':
        return out;
      case 'flip': {
        const n = rng.between(1, 8);
        // Mostly in the headers, where a flipped bit changes how the frame is read.
        for (let i = 0; i < n; i++)
          out[rng.below(Math.min(out.length, rng.chance(0.8) ? 80 : out.length))] ^= 1 << rng.below(8);
        return out;
      }
      case 'truncate':
        return out.subarray(0, rng.below(out.length));
      case 'cut-header':
        return out.subarray(0, rng.below(Math.min(out.length, 74)));
      case 'ip-options':
        return this.withIpOptions(out);
      case 'ip-header-length':
        if (out.length > IP_OFFSET) out[IP_OFFSET] = (out[IP_OFFSET]! & 0xf0) | rng.below(16);
        return out;
      case 'tcp-options':
        return this.withTcpOptions(out);
      case 'tcp-data-offset': {
        const at = this.transportOffset(out) + 12;
        if (at < out.length) out[at] = (rng.below(16) << 4) | (out[at]! & 0x0f);
        return out;
      }
      case 'length-field': {
        const v6 = out.length > 13 && out.readUInt16BE(12) === 0x86dd;
        const at = IP_OFFSET + (v6 ? 4 : 2);
        if (at + 2 <= out.length) out.writeUInt16BE(rng.pick([0, 1, 19, 20, 40, 0xffff, rng.below(65536)]), at);
        const udpLength = this.transportOffset(out) + 4;
        if (rng.chance(0.3) && udpLength + 2 <= out.length) out.writeUInt16BE(rng.below(65536), udpLength);
        return out;
      }
      case 'vlan-stack':
        return this.withVlanStack(out);
      case 'noise':
        return rng.bytes(rng.below(1600));
      case 'append':
        return Buffer.concat([out, rng.bytes(rng.between(1, 200))]);
    }
  }

  /** An IPv4 frame with option bytes of random kinds and lengths (IHL grown to cover them). */
  private withIpOptions(frame: Buffer): Buffer {
    const rng = this.rng;
    if (frame.length < IP_OFFSET + 20 || frame[IP_OFFSET]! >> 4 !== 4) return frame;
    const ihl = (frame[IP_OFFSET]! & 0x0f) * 4;
    const words = rng.between(1, 10);
    const options = rng.bytes(words * 4);
    // Plausible option kinds with lying lengths: 0/1/huge, or running off the header's end.
    options[0] = rng.pick([0x07, 0x44, 0x83, 0x89, 0x94, 0x01, 0x00, rng.below(256)]);
    options[1] = rng.pick([0, 1, 2, 255, options.length + 4, rng.below(256)]);
    const out = Buffer.concat([frame.subarray(0, IP_OFFSET + ihl), options, frame.subarray(IP_OFFSET + ihl)]);
    out[IP_OFFSET] = 0x40 | Math.min(15, ihl / 4 + words);
    if (rng.chance(0.7))
      out.writeUInt16BE(Math.min(0xffff, out.readUInt16BE(IP_OFFSET + 2) + words * 4), IP_OFFSET + 2);
    return out;
  }

  /** A TCP segment with garbage options (kinds 0..34, lengths 0, 1, or past the header). */
  private withTcpOptions(frame: Buffer): Buffer {
    const rng = this.rng;
    const at = this.transportOffset(frame);
    if (at + 20 > frame.length || !this.isTcp(frame)) return frame;
    const words = rng.between(1, 10);
    const options = rng.bytes(words * 4);
    for (let i = 0; i + 1 < options.length; i += rng.between(1, 6)) {
      options[i] = rng.pick([0, 1, 2, 3, 4, 5, 8, 19, 28, 29, 30, 34, rng.below(256)]);
      if (i + 1 < options.length) options[i + 1] = rng.pick([0, 1, 2, 10, 40, 255, rng.below(256)]);
    }
    const offset = (frame[at + 12]! >> 4) * 4;
    const out = Buffer.concat([frame.subarray(0, at + offset), options, frame.subarray(at + offset)]);
    out[at + 12] = (Math.min(15, offset / 4 + words) << 4) | (out[at + 12]! & 0x0f);
    return out;
  }

  /** 1 to 200 VLAN tags between the MAC addresses and the EtherType. */
  private withVlanStack(frame: Buffer): Buffer {
    const rng = this.rng;
    if (frame.length < 14) return frame;
    const depth = rng.chance(0.2) ? rng.between(100, 200) : rng.between(1, 8);
    const tags = Buffer.alloc(depth * 4);
    for (let i = 0; i < depth; i++) {
      tags.writeUInt16BE(rng.pick(TPIDS), i * 4);
      tags.writeUInt16BE(rng.below(65536), i * 4 + 2);
    }
    return Buffer.concat([frame.subarray(0, 12), tags, frame.subarray(12)]);
  }

  private isTcp(frame: Buffer): boolean {
    if (frame.length < IP_OFFSET + 40) return false;
    const etherType = frame.readUInt16BE(12);
    if (etherType === 0x0800) return frame[IP_OFFSET + 9] === 6;
    return etherType === 0x86dd && frame[IP_OFFSET + 6] === 6;
  }

  /** The transport header's offset in an untagged IPv4 or IPv6 frame (no extension headers). */
  private transportOffset(frame: Buffer): number {
    if (frame.length < IP_OFFSET + 1) return frame.length;
    if (frame.length > 13 && frame.readUInt16BE(12) === 0x86dd) return IP_OFFSET + 40;
    return IP_OFFSET + (frame[IP_OFFSET]! & 0x0f) * 4;
  }
}
