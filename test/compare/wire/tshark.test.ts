import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { buildIcmp, buildIcmpv6, buildTcp, buildUdp } from '../../support/wire-build.js';
import { connectionIdOf } from '../../../compare/wire/connection-id.js';
import { dissect } from '../../../compare/wire/dissect.js';
import { FrameInfo } from '../../../compare/wire/frame-info.js';
import { describeWith, hasCommand } from '../../support/prerequisites.js';
import { icmpSpec, tcpSpec, udpSpec } from './arbitraries.js';

/** A classic pcap file (microsecond, Ethernet link type) holding the frames. */
function pcap(frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20);
  const parts: Buffer[] = [header];
  frames.forEach((frame, i) => {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(i, 0);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    parts.push(record, frame);
  });
  return Buffer.concat(parts);
}

const fields = [
  'ip.src',
  'ipv6.src',
  'ip.dst',
  'ipv6.dst',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.seq_raw',
  'tcp.ack_raw',
  'tcp.flags',
  'tcp.hdr_len',
  'tcp.len',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
  'icmp.type',
  'icmpv6.type',
  'vlan.id',
  'ieee8021ad.id',
  'ip.checksum.status',
  'tcp.checksum.status',
  'udp.checksum.status',
  'icmp.checksum.status',
  'icmpv6.checksum.status',
] as const;

const dir = mkdtempSync(join(tmpdir(), 'colo-wire-tshark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeWith([hasCommand('tshark', 'tshark')], 'wire: tshark reads our frames as we do', () => {
  it('random TCP, UDP, ICMP and ICMPv6 frames: fields and checksums agree', () => {
    const arbitrary = fc.oneof(
      tcpSpec.map(buildTcp),
      udpSpec.map(buildUdp),
      icmpSpec(4).map(buildIcmp),
      icmpSpec(6).map(buildIcmpv6),
    );
    const frames = fc.sample(arbitrary, { numRuns: 300, seed: 20261126 });
    const file = join(dir, 'random.pcap');
    writeFileSync(file, pcap(frames));
    const args = ['-r', file, '-n', '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=f'];
    for (const pref of ['ip.check_checksum:TRUE', 'tcp.check_checksum:TRUE', 'udp.check_checksum:TRUE']) {
      args.push('-o', pref);
    }
    for (const field of fields) args.push('-e', field);
    const output = execFileSync('tshark', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    const rows = output.trimEnd().split('\n');
    expect(rows).toHaveLength(frames.length);

    const info = new FrameInfo();
    rows.forEach((row, index) => {
      const theirs = Object.fromEntries(row.split('\t').map((value, i) => [fields[i], value]));
      const frame = frames[index];
      expect(dissect(frame, 0, frame.length, info)).toBeNull();
      const ours = connectionIdOf(info);
      const context = `frame ${index + 1}: ${frame.toString('hex')}`;
      expect(info.ipVersion === 4 ? theirs['ip.src'] : theirs['ipv6.src'], context).toBe(ours.src);
      expect(info.ipVersion === 4 ? theirs['ip.dst'] : theirs['ipv6.dst'], context).toBe(ours.dst);
      // The first tag: an 802.1ad S-tag when present (tshark's ieee8021ad dissector), else the 802.1Q tag.
      const firstTag = theirs['ieee8021ad.id'] || theirs['vlan.id'];
      expect(firstTag === '' ? -1 : Number(firstTag), context).toBe(info.vlanId);
      if (info.ipVersion === 4) expect(theirs['ip.checksum.status'], context).toBe('1');
      if (ours.protocol === 'tcp') {
        expect(Number(theirs['tcp.srcport']), context).toBe(info.srcPort);
        expect(Number(theirs['tcp.dstport']), context).toBe(info.dstPort);
        expect(Number(theirs['tcp.seq_raw']), context).toBe(info.tcpSeq);
        expect(Number(theirs['tcp.ack_raw']), context).toBe(info.tcpAck);
        expect(Number(theirs['tcp.flags']) & 0xff, context).toBe(info.tcpFlags);
        expect(Number(theirs['tcp.hdr_len']), context).toBe(info.tcpHeaderLength);
        expect(Number(theirs['tcp.len']), context).toBe(info.payloadLength);
        expect(theirs['tcp.checksum.status'], context).toBe('1');
      } else if (ours.protocol === 'udp') {
        expect(Number(theirs['udp.srcport']), context).toBe(info.srcPort);
        expect(Number(theirs['udp.dstport']), context).toBe(info.dstPort);
        expect(Number(theirs['udp.length']) - 8, context).toBe(info.payloadLength);
        expect(theirs['udp.checksum.status'], context).toBe('1');
      } else if (ours.protocol === 'icmp') {
        expect(Number(theirs['icmp.type']), context).toBe(info.icmpType);
        expect(theirs['icmp.checksum.status'], context).toBe('1');
      } else {
        expect(ours.protocol).toBe('icmpv6');
        expect(Number(theirs['icmpv6.type']), context).toBe(info.icmpType);
        expect(theirs['icmpv6.checksum.status'], context).toBe('1');
      }
    });
  });
});
