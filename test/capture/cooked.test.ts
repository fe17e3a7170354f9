import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 } from '../../src/capture/cooked.js';
import { openCaptureBuffer, openCaptureFile, readAll } from '../../src/capture/open.js';
import { PcapWriter } from '../../src/capture/pcap.js';
import { PcapngWriter } from '../../src/capture/pcapng-writer.js';
import { BufferSink } from '../../src/capture/sink.js';
import { replayFiles } from '../../src/replay/run.js';
import { createNetns, deleteNetns } from '../support/netns.js';
import { describeWith, hasCommand, isRoot } from '../support/prerequisites.js';
import { buildTcp, buildUdp } from '../support/wire-build.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-cooked-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const tcp = buildTcp({
  src: '10.0.0.1',
  dst: '10.0.0.2',
  srcPort: 80,
  dstPort: 40000,
  seq: 1,
  ack: 2,
  flags: TcpFlag.ACK,
  payload: 'hello',
});
const udp6 = buildUdp({ src: 'fd00::1', dst: 'fd00::2', srcPort: 53, dstPort: 5353, payload: 'answer' });

/** An SLL header (LINKTYPE_LINUX_SLL.html): packet type, ARPHRD, address length, 8 address bytes, protocol. */
function sll(frame: Buffer, packetType: number, address: Buffer): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt16BE(packetType, 0);
  header.writeUInt16BE(1, 2);
  header.writeUInt16BE(address.length, 4);
  address.copy(header, 6);
  frame.copy(header, 14, 12, 14);
  return Buffer.concat([header, frame.subarray(14)]);
}

/** An SLL2 header (LINKTYPE_LINUX_SLL2.html): protocol, reserved, ifindex, ARPHRD, packet type, address. */
function sll2(frame: Buffer, packetType: number, address: Buffer): Buffer {
  const header = Buffer.alloc(20);
  frame.copy(header, 0, 12, 14);
  header.writeUInt32BE(7, 4);
  header.writeUInt16BE(1, 8);
  header[10] = packetType;
  header[11] = address.length;
  address.copy(header, 12);
  return Buffer.concat([header, frame.subarray(14)]);
}

/** What the reader should give back: the sender's address as source MAC, no destination but broadcast. */
function expected(frame: Buffer, source: Buffer, destination = Buffer.alloc(6)): Buffer {
  return Buffer.concat([destination, source, frame.subarray(12)]);
}

describe('Linux cooked captures (tcpdump -i any)', () => {
  it('reads SLL records from pcap and SLL2 records from pcapng as Ethernet frames', () => {
    const pcapSink = new BufferSink();
    const pcap = new PcapWriter(pcapSink, { linkType: LINKTYPE_LINUX_SLL });
    pcap.write(1, 0, sll(tcp, 4, MAC));
    pcap.write(2, 0, sll(udp6, 1, MAC));
    pcap.write(3, 0, sll(tcp, 0, Buffer.alloc(0)));
    pcap.flush();
    const fromPcap = readAll(openCaptureBuffer(pcapSink.toBuffer(), 'sll.pcap'));
    expect(fromPcap.error).toBeNull();
    expect(fromPcap.frames.map((f) => f.data)).toEqual([
      expected(tcp, MAC),
      expected(udp6, MAC, Buffer.alloc(6, 0xff)),
      expected(tcp, Buffer.alloc(6)),
    ]);
    expect(fromPcap.frames[0].originalLength).toBe(tcp.length);

    const ngSink = new BufferSink();
    const ng = new PcapngWriter(ngSink);
    ng.addInterface({ linkType: LINKTYPE_LINUX_SLL2 });
    ng.writePacket(0, 1, 0, sll2(tcp, 0, MAC));
    ng.writePacket(0, 2, 0, sll2(udp6, 4, MAC.subarray(0, 4)));
    ng.flush();
    const fromPcapng = readAll(openCaptureBuffer(ngSink.toBuffer(), 'sll2.pcapng'));
    expect(fromPcapng.error).toBeNull();
    expect(fromPcapng.frames.map((f) => f.data)).toEqual([
      expected(tcp, MAC),
      expected(udp6, Buffer.concat([MAC.subarray(0, 4), Buffer.alloc(2)])),
    ]);
  });

  it('a record shorter than its cooked header is a read error at that record', () => {
    const sink = new BufferSink();
    const pcap = new PcapWriter(sink, { linkType: LINKTYPE_LINUX_SLL2 });
    pcap.write(1, 0, sll2(tcp, 0, MAC));
    pcap.write(2, 0, Buffer.alloc(10));
    pcap.flush();
    const read = readAll(openCaptureBuffer(sink.toBuffer(), 'short.pcap'));
    expect(read.frames).toHaveLength(1);
    expect(read.error?.code).toBe('truncated-record');
    expect(read.error?.message).toContain('20-byte cooked header');
  });
});

/** A TCP exchange on lo inside the namespace: connect, 'ping' one way, 'pong' back, close. */
const exchange = `
const net = require('node:net');
const server = net.createServer((s) => s.on('data', () => s.end('pong')));
server.listen(7000, '127.0.0.1', () => {
  const c = net.connect(7000, '127.0.0.1', () => c.write('ping'));
  c.on('data', () => c.end());
  c.on('close', () => server.close());
});`;

/** Resolves when `test` holds for the text `stream` has written so far; rejects after 10 s. */
function waitFor(stream: NodeJS.ReadableStream, what: string, test: (text: string) => boolean): Promise<string> {
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${text}`)), 10_000);
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
}

/** The last segment of a TCP close: a line after the second line with a FIN (tcpdump's `Flags [F.]`). */
function closed(lines: string): boolean {
  const all = lines.trim().split('\n');
  const fins = all.map((line, i) => (/Flags \[[^\]]*F/.test(line) ? i : -1)).filter((i) => i >= 0);
  return fins.length >= 2 && all.length > fins[1] + 1;
}

/** Runs tcpdump -i any in `ns` while `traffic` runs, until it has written the TCP close; then stops it. */
async function captureAny(ns: string, file: string, extra: string[], traffic: () => Promise<unknown>): Promise<void> {
  const args = ['netns', 'exec', ns, 'tcpdump', '-i', 'any', '-U', '--print', '-l', '-n'];
  const tcpdump = spawn('ip', [...args, '-w', file, ...extra, 'tcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => tcpdump.once('exit', () => resolve()));
  try {
    await waitFor(tcpdump.stderr, 'tcpdump to listen', (text) => text.includes('listening on'));
    const written = waitFor(tcpdump.stdout, 'the TCP close', closed);
    await traffic();
    await written;
  } finally {
    tcpdump.kill('SIGINT');
    await exited;
  }
}

describeWith(
  [isRoot(), hasCommand('tcpdump', 'tcpdump'), hasCommand('ip', 'iproute2')],
  'replay of real tcpdump -i any captures',
  () => {
    const ns = `colo-cooked-${process.pid}`;
    afterAll(() => deleteNetns(ns));

    it('replays SLL2 (the default) and SLL (-y LINUX_SLL) captures of a TCP exchange on lo', async () => {
      await createNetns(ns);
      const traffic = () => runIn(ns, [process.execPath, '-e', exchange]);
      const files = { sll2: join(dir, 'any.pcap'), sll: join(dir, 'any-sll.pcap') };
      await captureAny(ns, files.sll2, [], traffic);
      await captureAny(ns, files.sll, ['-y', 'LINUX_SLL'], traffic);
      for (const [kind, file] of Object.entries(files)) {
        const reader = openCaptureFile(file);
        const linkType = reader.interfaces[0]?.linkType;
        expect(linkType, kind).toBe(kind === 'sll' ? LINKTYPE_LINUX_SLL : LINKTYPE_LINUX_SLL2);
        const { frames, error } = readAll(reader);
        expect(error, kind).toBeNull();
        // SYN, SYN-ACK, ACK, ping, its ACK, pong, FINs...: every one an IPv4 frame in an Ethernet header.
        expect(frames.length, kind).toBeGreaterThanOrEqual(8);
        for (const f of frames) expect(f.data.readUInt16BE(12), kind).toBe(0x0800);
        const summary = await replayFiles({ primary: file, secondary: file });
        expect(summary.readErrors, kind).toEqual([]);
        expect(summary.frames.primary, kind).toBe(frames.length);
        expect(summary.frames.malformed, kind).toBe(0);
        expect(summary.divergences, kind).toEqual([]);
        expect(summary.frames.released, kind).toBe(frames.length);
      }
    });
  },
);

function runIn(ns: string, command: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...command], { stdio: 'ignore' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command[0]} exited ${code}`))));
  });
}
