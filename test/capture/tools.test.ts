import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { buildTcp, buildUdp } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { PcapngWriter } from '../../src/capture/pcapng-writer.js';
import { FileSink } from '../../src/capture/sink.js';
import { describeWith, hasCommand } from '../support/prerequisites.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-tools-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frames = [
  buildTcp({
    src: '10.0.0.1',
    dst: '10.0.0.2',
    srcPort: 80,
    dstPort: 40000,
    seq: 1,
    ack: 2,
    flags: TcpFlag.ACK,
    payload: 'hello',
  }),
  buildUdp({ src: 'fd00::1', dst: 'fd00::2', srcPort: 53, dstPort: 5353, payload: 'answer' }),
  buildTcp({
    src: '10.0.0.1',
    dst: '10.0.0.2',
    srcPort: 80,
    dstPort: 40000,
    seq: 6,
    ack: 2,
    flags: TcpFlag.FIN | TcpFlag.ACK,
  }),
];

function tcpdump(path: string): string[] {
  return execFileSync('tcpdump', ['-nn', '-tt', '-r', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .trim()
    .split('\n');
}

function capinfos(path: string): string {
  return execFileSync('capinfos', [path], { encoding: 'utf8' });
}

describeWith(
  [hasCommand('tcpdump', 'tcpdump'), hasCommand('capinfos', 'wireshark-common')],
  'tcpdump and capinfos read what the writers wrote',
  () => {
    for (const nanosecond of [false, true]) {
      for (const bigEndian of [false, true]) {
        it(`pcap ${nanosecond ? 'ns' : 'µs'} ${bigEndian ? 'big' : 'little'}-endian`, () => {
          const path = join(dir, `t-${nanosecond}-${bigEndian}.pcap`);
          const sink = new FileSink(path);
          const writer = new PcapWriter(sink, { nanosecond, bigEndian });
          frames.forEach((f, i) => writer.write(1767225600 + i, 123456000, f));
          writer.flush();
          sink.close();
          const lines = tcpdump(path);
          expect(lines).toHaveLength(3);
          expect(lines[0]).toMatch(/^1767225600\.123456 IP 10\.0\.0\.1\.80 > 10\.0\.0\.2\.40000: .*length 5/);
          expect(lines[1]).toMatch(/^1767225601\.123456 IP6 fd00::1\.53 > fd00::2\.5353: /);
          expect(lines[2]).toContain('Flags [F.]');
          const info = capinfos(path);
          expect(info).toMatch(/Number of packets:\s+3/);
          expect(info).toMatch(/File encapsulation:\s+Ethernet/);
          expect(info).toMatch(nanosecond ? /nanosecond pcap/ : /File type:\s+Wireshark\/tcpdump\/\.\.\. - pcap/);
        });
      }
    }

    it('pcapng with two interfaces and comments', () => {
      const path = join(dir, 't.pcapng');
      const sink = new FileSink(path);
      const writer = new PcapngWriter(sink, { comment: 'made by the tools test' });
      writer.addInterface({ name: 'primary' });
      writer.addInterface({ name: 'secondary', tsresol: 6 });
      writer.writePacket(0, 1767225600, 1, frames[0], { comment: 'first' });
      writer.writePacket(1, 1767225600, 2000, frames[1]);
      writer.writePacket(0, 1767225601, 0, frames[2]);
      writer.flush();
      sink.close();
      expect(tcpdump(path)).toHaveLength(3);
      const info = capinfos(path);
      expect(info).toMatch(/File type:\s+Wireshark\/\.\.\. - pcapng/);
      expect(info).toMatch(/Number of packets:\s+3/);
      expect(info).toMatch(/Number of interfaces in file: 2/);
      expect(info).toMatch(/Name = primary/);
      expect(info).toMatch(/Name = secondary/);
    });
  },
);

describeWith([hasCommand('tshark', 'tshark')], 'tshark reads pcapng comments and interface timestamps', () => {
  it('shows each packet comment on its interface, nanoseconds intact', () => {
    const path = join(dir, 'comments.pcapng');
    const sink = new FileSink(path);
    const writer = new PcapngWriter(sink, { bigEndian: true });
    writer.addInterface({ name: 'primary' });
    writer.addInterface({ name: 'secondary' });
    writer.writePacket(0, 1767225600, 123456789, frames[0], { comment: 'divergence 1: payload, offset 3' });
    writer.writePacket(1, 1767225600, 123456790, frames[0], { comment: 'divergence 1: payload, offset 3' });
    writer.flush();
    sink.close();
    const out = execFileSync(
      'tshark',
      ['-r', path, '-T', 'fields', '-e', 'frame.interface_id', '-e', 'frame.time_epoch', '-e', 'frame.comment'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    expect(out.trim().split('\n')).toEqual([
      '0\t1767225600.123456789\tdivergence 1: payload, offset 3',
      '1\t1767225600.123456790\tdivergence 1: payload, offset 3',
    ]);
  });
});
