/**
 * The bundled example capture pairs, built deterministically from the packet builders (nothing copied
 * from a real capture). Each pair is the egress of a primary and a secondary VM serving the same HTTP
 * clients: what colo-proxy would compare. `npm run examples` writes them; a test checks the files on
 * disk equal a fresh build byte for byte.
 */
import { buildTcp } from '../test/support/wire-build.js';
import { TcpFlag } from '../compare/wire/frame-info.js';
import { BufferSink } from '../src/capture/sink.js';
import { PcapWriter } from '../src/capture/pcap.js';

export interface ExamplePair {
  name: string;
  description: string;
  primary: Buffer;
  secondary: Buffer;
}

/** 2026-01-01T00:00:00Z: the examples' capture clock starts here. */
const EPOCH_SECONDS = 1767225600;
const SERVER = '192.0.2.10';
const CLIENT = '198.51.100.20';
const MSS = 1448;

interface Frame {
  /** Microseconds since EPOCH_SECONDS. */
  atUs: number;
  frame: Buffer;
}

interface Side {
  /** The server's initial sequence number: differs between the VMs, as real ISNs do. */
  isn: number;
  ttl: number;
  ipIdBase: number;
  /** Segment sizes for the response body; the last size repeats. */
  segmentSizes: number[];
  /** Delay of this side's frames behind the event time (µs): the secondary answers a little later. */
  lagUs: number;
  date: string;
}

function response(date: string, body: string): string {
  return (
    'HTTP/1.1 200 OK\r\n' +
    `Date: ${date}\r\n` +
    'Server: colo-example\r\n' +
    'Content-Type: text/plain\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

/** A deterministic body: lines of text long enough to need several segments. */
function body(exchange: number): string {
  let text = '';
  for (let line = 0; line < 60; line++) {
    text += `exchange ${exchange} line ${String(line).padStart(2, '0')}: the quick brown fox jumps over the lazy dog\n`;
  }
  return text;
}

/**
 * One HTTP exchange as the server VM emits it: SYN-ACK, ACK of the request, the response in segments,
 * FIN-ACK, and the ACK of the client's FIN. The client's own packets are not egress and are not here.
 */
function exchange(index: number, side: Side, startUs: number): Frame[] {
  const clientPort = 40000 + index;
  const clientIsn = 1000000 * (index + 1);
  const requestLength = 78;
  const reply = Buffer.from(response(side.date, body(index)));
  const frames: Frame[] = [];
  let ipId = side.ipIdBase + index * 100;
  const tcp = (atUs: number, seq: number, ack: number, flags: number, payload?: Buffer): void => {
    frames.push({
      atUs: atUs + side.lagUs,
      frame: buildTcp({
        src: SERVER,
        dst: CLIENT,
        srcPort: 80,
        dstPort: clientPort,
        seq: seq >>> 0,
        ack: ack >>> 0,
        flags,
        ttl: side.ttl,
        ipId: ipId++ & 0xffff,
        payload,
      }),
    });
  };
  const afterRequest = clientIsn + 1 + requestLength;
  tcp(startUs, side.isn, clientIsn + 1, TcpFlag.SYN | TcpFlag.ACK);
  tcp(startUs + 400, side.isn + 1, afterRequest, TcpFlag.ACK);
  let offset = 0;
  let segment = 0;
  while (offset < reply.length) {
    const size = side.segmentSizes[Math.min(segment, side.segmentSizes.length - 1)];
    const piece = reply.subarray(offset, Math.min(reply.length, offset + size));
    tcp(startUs + 1000 + segment * 50, side.isn + 1 + offset, afterRequest, TcpFlag.ACK | TcpFlag.PSH, piece);
    offset += piece.length;
    segment++;
  }
  const finSeq = side.isn + 1 + reply.length;
  tcp(startUs + 2000, finSeq, afterRequest, TcpFlag.FIN | TcpFlag.ACK);
  tcp(startUs + 2600, finSeq + 1, afterRequest + 1, TcpFlag.ACK);
  return frames;
}

const EXCHANGES = 3;
/** Exchanges start 100 ms apart. */
const EXCHANGE_GAP_US = 100_000;

function capture(side: Side): Buffer {
  const frames: Frame[] = [];
  for (let i = 0; i < EXCHANGES; i++) frames.push(...exchange(i, side, i * EXCHANGE_GAP_US));
  frames.sort((a, b) => a.atUs - b.atUs);
  const sink = new BufferSink();
  const writer = new PcapWriter(sink);
  for (const f of frames) {
    writer.write(EPOCH_SECONDS + Math.floor(f.atUs / 1e6), (f.atUs % 1e6) * 1000, f.frame);
  }
  writer.flush();
  return sink.toBuffer();
}

const DATE = 'Thu, 01 Jan 2026 00:00:00 GMT';
const primarySide: Side = { isn: 0x10000000, ttl: 64, ipIdBase: 1, segmentSizes: [MSS], lagUs: 0, date: DATE };
const secondarySide: Side = { isn: 0x7f000000, ttl: 63, ipIdBase: 20001, segmentSizes: [MSS], lagUs: 150, date: DATE };

export function buildExamples(): ExamplePair[] {
  return [
    {
      name: 'http',
      description: 'three HTTP exchanges, identical on both sides up to ISN, TTL and IP id',
      primary: capture(primarySide),
      secondary: capture(secondarySide),
    },
    {
      name: 'http-nondeterministic',
      description: "the same, but the secondary's Date header is one second later: a payload divergence per reply",
      primary: capture(primarySide),
      secondary: capture({ ...secondarySide, date: 'Thu, 01 Jan 2026 00:00:01 GMT' }),
    },
    {
      name: 'resegmented',
      description:
        'the same byte streams, cut into 1448-byte segments by the primary and 512/1000-byte ones by the secondary',
      primary: capture(primarySide),
      secondary: capture({ ...secondarySide, segmentSizes: [512, 1000] }),
    },
  ];
}
