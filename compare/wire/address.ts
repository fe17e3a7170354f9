/**
 * Address text <-> bytes. Formatting runs only when something is printed (a divergence record, a log
 * line, a test); parsing only in builders and config. Parsing throws: it is an edge, never the hot path.
 */

export function formatMac(buf: Buffer, offset: number): string {
  let text = '';
  for (let i = 0; i < 6; i++) {
    if (i > 0) text += ':';
    text += buf[offset + i].toString(16).padStart(2, '0');
  }
  return text;
}

export function writeMac(text: string, buf: Buffer, offset: number): void {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new Error(`not a MAC address: ${JSON.stringify(text)}`);
  }
  for (let i = 0; i < 6; i++) buf[offset + i] = parseInt(parts[i], 16);
}

export function formatIpv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/**
 * RFC 5952 text: lower case, no leading zeros, the first longest run (of two or more) of zero groups as "::".
 */
export function formatIpv6(buf: Buffer, offset: number): string {
  let bestStart = -1;
  let bestLength = 0;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    const zero = buf[offset + 2 * i] === 0 && buf[offset + 2 * i + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = i;
      const runLength = i - runStart + 1;
      if (runLength > bestLength) {
        bestStart = runStart;
        bestLength = runLength;
      }
    } else {
      runStart = -1;
    }
  }
  if (bestLength < 2) bestStart = -1;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses end in dotted form, as
  // RFC 5952 section 5 asks for the former and inet_ntop (so tcpdump, tshark, ss) prints both.
  if (
    bestStart === 0 &&
    (bestLength === 6 || (bestLength === 5 && buf[offset + 10] === 0xff && buf[offset + 11] === 0xff))
  ) {
    return `::${bestLength === 5 ? 'ffff:' : ''}${formatIpv4(buf, offset + 12)}`;
  }
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLength - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(':')) text += ':';
    text += ((buf[offset + 2 * i] << 8) | buf[offset + 2 * i + 1]).toString(16);
  }
  return text;
}

/** 4, 6, or 0 when the text is neither form (decided by shape; the writers validate fully). */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (text.includes(':')) return 6;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return 4;
  return 0;
}

export function writeIpv4(text: string, buf: Buffer, offset: number): void {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  }
  for (let i = 0; i < 4; i++) buf[offset + i] = Number(parts[i]);
}

/** Accepts "::" compression and a trailing dotted IPv4 part ("::ffff:10.0.0.1"). */
export function writeIpv6(text: string, buf: Buffer, offset: number): void {
  const fail = (): never => {
    throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
  };
  const groups: number[] = [];
  const halves = text.split('::');
  if (halves.length > 2) fail();
  const toGroups = (part: string, last: boolean): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    pieces.forEach((piece, index) => {
      if (last && index === pieces.length - 1 && piece.includes('.')) {
        const v4 = Buffer.alloc(4);
        writeIpv4(piece, v4, 0);
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        fail();
      }
    });
    return out;
  };
  const head = toGroups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? toGroups(halves[1], true) : [];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) fail();
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    if (head.length !== 8) fail();
    groups.push(...head);
  }
  for (let i = 0; i < 8; i++) {
    buf[offset + 2 * i] = groups[i] >>> 8;
    buf[offset + 2 * i + 1] = groups[i] & 0xff;
  }
}

/** The address as bytes (4 or 16), family from its form. */
export function ipBytes(text: string): Buffer {
  const family = ipFamily(text);
  if (family === 4) {
    const out = Buffer.alloc(4);
    writeIpv4(text, out, 0);
    return out;
  }
  if (family === 6) {
    const out = Buffer.alloc(16);
    writeIpv6(text, out, 0);
    return out;
  }
  throw new Error(`not an IP address: ${JSON.stringify(text)}`);
}

export function formatIp(buf: Buffer, offset: number, length: number): string {
  return length === 16 ? formatIpv6(buf, offset) : formatIpv4(buf, offset);
}
