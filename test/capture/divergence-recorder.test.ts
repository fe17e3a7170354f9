import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTcp } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import type { Divergence, Packet } from '../../compare/types.js';
import { DivergenceRecorder } from '../../src/capture/divergence-recorder.js';
import { openCaptureFile, readAll } from '../../src/capture/open.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-recorder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function packet(side: 'primary' | 'secondary', payload: string, arrivedAt: number, vnetHeader = 0): Packet {
  const frame = buildTcp({
    src: '10.0.0.1',
    dst: '10.0.0.2',
    srcPort: 80,
    dstPort: 40000,
    seq: 1,
    ack: 1,
    flags: TcpFlag.ACK,
    payload,
  });
  return { frame: Buffer.concat([Buffer.alloc(vnetHeader, 0xee), frame]), start: vnetHeader, side, arrivedAt, tag: 0 };
}

function divergence(
  primary: Packet | null,
  secondary: Packet | null,
  reason: Divergence['reason'],
  offset: number | null,
): Divergence {
  return {
    time: primary?.arrivedAt ?? secondary?.arrivedAt ?? 0,
    connection: { protocol: 'tcp', family: 4, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 80, dstPort: 40000 },
    protocol: 'tcp',
    reason,
    offset,
    primary,
    secondary,
    detail: 'test',
  };
}

describe('divergence recorder', () => {
  it('writes each pair side by side on two interfaces, commented with reason, offset and connection', async () => {
    const path = join(dir, 'div.pcapng');
    const recorder = await DivergenceRecorder.open(path, {
      clockOrigin: { seconds: 1767225600, nanoseconds: 999_000_000 },
    });
    const p1 = packet('primary', 'Date: 1', 1.5, 10);
    const s1 = packet('secondary', 'Date: 2', 1.65);
    recorder.record(divergence(p1, s1, 'payload', 6));
    recorder.record(divergence(packet('primary', 'late', 4000), null, 'timeout', null));
    recorder.record(divergence(null, null, 'overflow', null));
    await recorder.close();
    expect({ count: recorder.count, withoutFrames: recorder.withoutFrames }).toEqual({ count: 3, withoutFrames: 1 });

    const reader = openCaptureFile(path);
    const { frames, error } = readAll(reader);
    expect(error).toBeNull();
    expect(reader.interfaces.map((i) => i.name)).toEqual(['primary', 'secondary']);
    expect(frames.map((f) => [f.interfaceId, f.seconds, f.nanoseconds])).toEqual([
      [0, 1767225601, 500_000],
      [1, 1767225601, 650_000],
      [0, 1767225604, 999_000_000],
    ]);
    // The frame from its Ethernet header on: the vnet header is not part of it.
    expect(frames[0].data).toEqual(p1.frame.subarray(10));
    expect(frames[1].data).toEqual(s1.frame);
    // A line to search in Wireshark, then the divergence record as JSON, its time the capture's (epoch) time.
    const [line0, json0] = frames[0].comment!.split('\n');
    const [line1, json1] = frames[1].comment!.split('\n');
    expect(line0).toBe('divergence 1: payload, offset 6, tcp 10.0.0.1:80 > 10.0.0.2:40000: test; primary frame');
    expect(line1).toBe('divergence 1: payload, offset 6, tcp 10.0.0.1:80 > 10.0.0.2:40000: test; secondary frame');
    expect(JSON.parse(json0)).toEqual(JSON.parse(json1));
    expect(JSON.parse(json0)).toMatchObject({
      time: 1767225601000.5,
      connection: { protocol: 'tcp', src: '10.0.0.1', srcPort: 80, dst: '10.0.0.2', dstPort: 40000 },
      reason: 'payload',
      offset: 6,
      primaryLength: p1.frame.length - 10,
      secondaryLength: s1.frame.length,
    });
    expect(frames[2].comment).toContain(
      'divergence 2: timeout, no offset, tcp 10.0.0.1:80 > 10.0.0.2:40000 (no secondary frame)',
    );
  });

  it('is readable while still open: each divergence is flushed to the stream', async () => {
    const path = join(dir, 'live.pcapng');
    const recorder = await DivergenceRecorder.open(path);
    recorder.record(
      divergence(packet('primary', 'a', 1_767_225_600_000), packet('secondary', 'b', 1_767_225_600_000), 'payload', 0),
    );
    // Wait (bounded) until the stream has handed the bytes to the file.
    const deadline = Date.now() + 5000;
    let frames = 0;
    while (frames < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      frames = readAll(openCaptureFile(path)).frames.length;
    }
    expect(frames).toBe(2);
    await recorder.close();
  });

  it('rejects a path it cannot create', async () => {
    await expect(DivergenceRecorder.open(join(dir, 'missing', 'x.pcapng'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
