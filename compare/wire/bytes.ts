/**
 * Big-endian field access for the packet views. Plain byte arithmetic instead of Buffer.readUInt16BE:
 * it never throws (an out-of-range index reads as undefined, which bit operations turn into 0), so a view
 * bug degrades to a wrong value caught by the property tests instead of an exception on the hot path.
 */

export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

export function u16(buf: Buffer, offset: number): number {
  return (buf[offset] << 8) | buf[offset + 1];
}

export function u32(buf: Buffer, offset: number): number {
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
}

export function put16(buf: Buffer, offset: number, value: number): void {
  buf[offset] = (value >>> 8) & 0xff;
  buf[offset + 1] = value & 0xff;
}

export function put32(buf: Buffer, offset: number, value: number): void {
  buf[offset] = (value >>> 24) & 0xff;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}
