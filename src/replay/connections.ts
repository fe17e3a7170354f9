import type { ConnectionId, Protocol } from '../../compare/types.js';
import { formatIp } from '../../compare/wire/address.js';
import { dissect } from '../../compare/wire/dissect.js';
import { EtherType, FrameInfo, IpProtocol } from '../../compare/wire/frame-info.js';
import { formatConnection, type ReplayConnection } from './summary.js';

/** Per-connection counters, indexed by the number the replay passes to the engine as a packet's tag. */
export interface ConnectionCounts extends ReplayConnection {
  /** Virtual time of the latest secondary frame: the later frame of a pair, for compare latency. */
  lastSecondaryAt: number;
}

interface Entry {
  hash: number;
  /** Key words: protocol/family/ports, then the address words. Compared on a hash hit. */
  key: Int32Array;
  nextSameHash: number;
}

const MAX_KEY_WORDS = 2 + 8;

/**
 * Attributes frames to connections for the summary's per-connection counts. Lookup hashes the dissected
 * 5-tuple into a Map of chains and builds a string only when a connection is first seen, so counting
 * costs no allocation per frame.
 */
export class ConnectionCounter {
  readonly counts: ConnectionCounts[] = [];
  private readonly entries: Entry[] = [];
  private readonly byHash = new Map<number, number>();
  private readonly byName = new Map<string, number>();
  private readonly info = new FrameInfo();
  private readonly scratch = new Int32Array(MAX_KEY_WORDS);

  /** The connection index of a frame, or -1 when it does not dissect (the engine will call it malformed). */
  classify(frame: Buffer, start: number): number {
    if (dissect(frame, start, frame.length, this.info) !== null) return -1;
    return this.classifyDissected(this.info);
  }

  /** The connection index of a frame already dissected into `info` (e.g. by the engine's inspect()). */
  classifyDissected(info: Readonly<FrameInfo>): number {
    const frame = info.buf;
    const key = this.scratch;
    let words = 2;
    key[0] = (info.ipVersion << 24) | (info.ipProtocol << 16) | (info.ipVersion === 0 ? info.etherType : 0);
    key[1] = (info.srcPort << 16) | info.dstPort;
    const addrLength = info.addrLength;
    // Byte reads rather than Buffer#readInt32BE: no bounds-check call per word, and an ARP protocol address
    // whose length is not a multiple of 4 at the very end of a frame reads as zero-padded, not a RangeError.
    for (let i = 0; i < addrLength; i += 4) key[words++] = readWord(frame, info.srcAddrOffset + i);
    for (let i = 0; i < addrLength; i += 4) key[words++] = readWord(frame, info.dstAddrOffset + i);
    let hash = 0x811c9dc5;
    for (let i = 0; i < words; i++) hash = Math.imul(hash ^ key[i], 0x01000193);

    let index = this.byHash.get(hash) ?? -1;
    while (index >= 0) {
      const entry = this.entries[index];
      if (entry.key.length === words && sameWords(entry.key, key, words)) return index;
      index = entry.nextSameHash;
    }
    return this.add(hash, key.slice(0, words), this.connectionId(info));
  }

  /** The index of a connection named by the engine (divergences), created if no frame of it was seen. */
  byConnection(id: ConnectionId): number {
    const name = formatConnection(id);
    const found = this.byName.get(name);
    if (found !== undefined) return found;
    const index = this.counts.length;
    this.byName.set(name, index);
    this.counts.push(emptyCounts(name, id.protocol));
    this.entries.push({ hash: 0, key: new Int32Array(0), nextSameHash: -1 });
    return index;
  }

  private add(hash: number, key: Int32Array, id: ConnectionId): number {
    const name = formatConnection(id);
    const existing = this.byName.get(name);
    const index = existing ?? this.counts.length;
    const entry: Entry = { hash, key, nextSameHash: this.byHash.get(hash) ?? -1 };
    if (existing === undefined) {
      this.counts.push(emptyCounts(name, id.protocol));
      this.entries.push(entry);
      this.byName.set(name, index);
    } else {
      // Named before by a divergence: attach the key to that entry.
      this.entries[index] = entry;
    }
    this.byHash.set(hash, index);
    return index;
  }

  private connectionId(info: Readonly<FrameInfo>): ConnectionId {
    const frame = info.buf;
    // Named as the engine names its connections (compare/engine.ts connectionIdOf), so divergences and
    // frame counts land on the same entry.
    const printable = info.addrLength === 4 || info.addrLength === 16;
    return {
      protocol:
        info.ipVersion === 0
          ? info.etherType === EtherType.ARP
            ? 'arp'
            : 'other'
          : protocolOf(info.ipVersion, info.ipProtocol, info.isFragment || info.moreFragments),
      family: info.ipVersion,
      src: printable ? formatIp(frame, info.srcAddrOffset, info.addrLength) : '',
      dst: printable ? formatIp(frame, info.dstAddrOffset, info.addrLength) : '',
      srcPort: info.srcPort,
      dstPort: info.dstPort,
    };
  }

  /** Sorted by name: the summary's order does not depend on which connection spoke first. */
  sorted(): ReplayConnection[] {
    return this.counts
      .map(({ lastSecondaryAt: _ignored, ...rest }) => rest)
      .sort((a, b) => (a.connection < b.connection ? -1 : a.connection > b.connection ? 1 : 0));
  }
}

function protocolOf(ipVersion: 4 | 6, ipProtocol: number, fragment: boolean): Protocol {
  if (fragment) return 'ip';
  switch (ipProtocol) {
    case IpProtocol.TCP:
      return 'tcp';
    case IpProtocol.UDP:
      return 'udp';
    case IpProtocol.ICMP:
      return ipVersion === 4 ? 'icmp' : 'ip';
    case IpProtocol.ICMPV6:
      return ipVersion === 6 ? 'icmpv6' : 'ip';
    default:
      return 'ip';
  }
}

function readWord(buf: Buffer, offset: number): number {
  return (buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3];
}

function sameWords(a: Int32Array, b: Int32Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function emptyCounts(connection: string, protocol: Protocol): ConnectionCounts {
  return {
    connection,
    protocol,
    primary: 0,
    secondary: 0,
    released: 0,
    dropped: 0,
    divergences: 0,
    lastSecondaryAt: 0,
  };
}
