/**
 * The TCP options the sequence rewriter patches in place: timestamps (mapped between the VMs' clocks) and
 * SACK edges (moved by the sequence offset), each change with an incremental checksum fix.
 */
import { seqAdd } from '../compare/seq.js';
import { checksumUpdate32 } from '../compare/wire/checksum.js';
import type { FrameInfo } from '../compare/wire/frame-info.js';

const TCP_OPTION = { END: 0, NOP: 1, SACK: 5, TIMESTAMPS: 8 } as const;
/** Offsets of TSval and TSecr within the timestamps option (kind, length, value, echo). */
export const TS_VALUE = 2;
export const TS_ECHO = 6;

/** Offset of the first option of `kind` in a dissected TCP frame, or -1. */
function findTcpOption(frame: Buffer, info: FrameInfo, kind: number): number {
  let at = info.l4Offset + 20;
  const end = info.l4Offset + info.tcpHeaderLength;
  while (at < end) {
    const current = frame[at];
    if (current === TCP_OPTION.END) return -1;
    if (current === TCP_OPTION.NOP) {
      at++;
      continue;
    }
    if (at + 1 >= end) return -1;
    const length = frame[at + 1];
    if (length < 2 || at + length > end) return -1;
    if (current === kind) return at;
    at += length;
  }
  return -1;
}

/** Sets a 32-bit field inside the TCP header and fixes the checksum incrementally. */
function patchTcp32(frame: Buffer, info: FrameInfo, at: number, next: number): void {
  const checksumAt = info.l4Offset + 16;
  const old = frame.readUInt32BE(at);
  frame.writeUInt32BE(next >>> 0, at);
  frame.writeUInt16BE(checksumUpdate32(frame.readUInt16BE(checksumAt), old, next >>> 0), checksumAt);
}

/** TSval of the frame's timestamps option, or -1 when it has none. */
export function timestampValue(info: FrameInfo): number {
  if (info.tcpHeaderLength <= 20) return -1;
  const at = findTcpOption(info.buf, info, TCP_OPTION.TIMESTAMPS);
  return at < 0 || info.buf[at + 1] !== 10 ? -1 : info.buf.readUInt32BE(at + TS_VALUE);
}

/** Moves TSval or TSecr by `delta` (mod 2^32). TSecr 0 means "no echo yet" and stays 0. */
export function shiftTimestamp(frame: Buffer, info: FrameInfo, field: number, delta: number): boolean {
  if (info.tcpHeaderLength <= 20) return false;
  const at = findTcpOption(frame, info, TCP_OPTION.TIMESTAMPS);
  if (at < 0 || frame[at + 1] !== 10) return false;
  const value = frame.readUInt32BE(at + field);
  if (field === TS_ECHO && value === 0) return false;
  patchTcp32(frame, info, at + field, seqAdd(value, delta));
  return true;
}

/** SACK blocks acknowledge the VM's sequence space: each edge moves by the offset too. */
export function rewriteSackEdges(frame: Buffer, info: FrameInfo, offset: number): boolean {
  const at = findTcpOption(frame, info, TCP_OPTION.SACK);
  if (at < 0) return false;
  const end = at + frame[at + 1];
  for (let edge = at + 2; edge + 4 <= end; edge += 4)
    patchTcp32(frame, info, edge, seqAdd(frame.readUInt32BE(edge), offset));
  return true;
}
