/**
 * The lab guest's control protocol, both directions. Every message is one header line, `VERB LENGTH\n`
 * (VERB is upper-case letters, LENGTH a decimal byte count), followed by exactly LENGTH bytes of body.
 * Requests: SUSPEND 0, RESUME 0, SAVE 0, LOAD n + state, NONDET 2|3 + "on"/"off", STATUS 0, PING 0.
 * Replies: OK n + body (the state for SAVE, JSON for STATUS, empty otherwise), or ERR n + a message.
 * It can be typed by hand: `printf 'SUSPEND 0\n' | nc -U guest.sock`.
 */

export const CONTROL_VERBS = ['SUSPEND', 'RESUME', 'SAVE', 'LOAD', 'NONDET', 'STATUS', 'PING', 'OK', 'ERR'] as const;
export type ControlVerb = (typeof CONTROL_VERBS)[number];

export interface ControlMessage {
  verb: ControlVerb;
  body: Buffer;
}

export type ControlDecodeError = 'header-too-long' | 'bad-header' | 'unknown-verb' | 'body-too-large';

/** A header line longer than this is garbage, not a message. */
const MAX_HEADER = 64;
const HEADER = /^([A-Z]+) (\d{1,16})$/;

export function encodeControl(verb: ControlVerb, body: Buffer | string = ''): Buffer[] {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return [Buffer.from(`${verb} ${payload.length}\n`, 'latin1'), payload];
}

/**
 * Streaming decoder: push chunks in any split, take whole messages out. Bodies are gathered as a list of
 * chunks and copied once, so a large state costs one copy. A decode error is returned, and the decoder
 * refuses further input (the stream is out of step and must be closed).
 */
export class ControlDecoder {
  private header = '';
  private verb: ControlVerb | null = null;
  private need = 0;
  private parts: Buffer[] = [];
  private have = 0;
  private broken: ControlDecodeError | null = null;

  constructor(private readonly maxBody: number) {}

  push(chunk: Buffer, out: ControlMessage[]): ControlDecodeError | null {
    if (this.broken) return this.broken;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.verb === null) {
        const newline = chunk.indexOf(0x0a, offset);
        const end = newline === -1 ? chunk.length : newline;
        this.header += chunk.toString('latin1', offset, end);
        if (this.header.length > MAX_HEADER) return this.fail('header-too-long');
        if (newline === -1) return null;
        offset = newline + 1;
        const error = this.startBody(out);
        if (error) return this.fail(error);
        continue;
      }
      const take = Math.min(this.need - this.have, chunk.length - offset);
      this.parts.push(chunk.subarray(offset, offset + take));
      this.have += take;
      offset += take;
      if (this.have === this.need) this.finish(out);
    }
    return null;
  }

  private startBody(out: ControlMessage[]): ControlDecodeError | null {
    const match = HEADER.exec(this.header.replace(/\r$/, ''));
    this.header = '';
    if (!match) return 'bad-header';
    if (!(CONTROL_VERBS as readonly string[]).includes(match[1])) return 'unknown-verb';
    const length = Number(match[2]);
    if (length > this.maxBody) return 'body-too-large';
    this.verb = match[1] as ControlVerb;
    this.need = length;
    if (length === 0) this.finish(out);
    return null;
  }

  private finish(out: ControlMessage[]): void {
    const body = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.have);
    out.push({ verb: this.verb as ControlVerb, body });
    this.verb = null;
    this.parts = [];
    this.need = 0;
    this.have = 0;
  }

  private fail(error: ControlDecodeError): ControlDecodeError {
    this.broken = error;
    return error;
  }
}

export type ControlAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/**
 * `unix:PATH`, `tcp:HOST:PORT`, or bare: `HOST:PORT` when it ends in a port number and has no slash,
 * otherwise a unix socket path. Returns null when a `tcp:` address has no valid port.
 */
export function parseControlAddress(text: string): ControlAddress | null {
  if (text.startsWith('unix:')) return text.length > 5 ? { kind: 'unix', path: text.slice(5) } : null;
  const tcp = text.startsWith('tcp:');
  const rest = tcp ? text.slice(4) : text;
  const match = /^(.+):(\d{1,5})$/.exec(rest);
  if (match && !rest.includes('/')) {
    const port = Number(match[2]);
    if (port > 65535) return null;
    return { kind: 'tcp', host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
  }
  if (tcp || rest === '') return null;
  return { kind: 'unix', path: rest };
}
