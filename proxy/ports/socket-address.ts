/**
 * Where a framed port's socket lives: `listen:HOST:PORT`, `connect:HOST:PORT`, `listen:unix:PATH` or
 * `connect:unix:PATH`. An IPv6 host is written in brackets: `listen:[::1]:9000`. Port 0 (listen only)
 * asks the kernel for a free port.
 */

export type SocketMode = 'listen' | 'connect';

export type SocketAddress =
  | { readonly mode: SocketMode; readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly mode: SocketMode; readonly kind: 'unix'; readonly path: string };

/** A malformed address; names the flag it came from so the operator knows which one to fix. */
export class SocketAddressError extends Error {
  readonly code = 'COLO_SOCKET_ADDRESS';
  constructor(
    readonly flag: string,
    readonly received: string,
    readonly problem: string,
  ) {
    super(
      `${flag}: ${problem} in ${JSON.stringify(received)}; expected listen:HOST:PORT, connect:HOST:PORT, ` +
        'listen:unix:PATH or connect:unix:PATH',
    );
    this.name = 'SocketAddressError';
  }
}

export function parseSocketAddress(flag: string, text: string): SocketAddress {
  const colon = text.indexOf(':');
  const modeText = colon < 0 ? text : text.slice(0, colon);
  if (modeText !== 'listen' && modeText !== 'connect') {
    throw new SocketAddressError(flag, text, `unknown mode "${modeText}" (use listen: or connect:)`);
  }
  const mode: SocketMode = modeText;
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (rest.startsWith('unix:')) {
    const path = rest.slice('unix:'.length);
    if (path === '') throw new SocketAddressError(flag, text, 'empty unix socket path');
    return { mode, kind: 'unix', path };
  }
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw new SocketAddressError(flag, text, 'unterminated [IPv6] host');
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
  } else {
    const last = rest.lastIndexOf(':');
    if (last < 0) throw new SocketAddressError(flag, text, 'missing :PORT');
    host = rest.slice(0, last);
    portText = rest.slice(last + 1);
    if (host.includes(':')) throw new SocketAddressError(flag, text, 'an IPv6 host must be written in [brackets]');
  }
  if (host === '') throw new SocketAddressError(flag, text, 'empty host');
  if (!/^\d{1,5}$/.test(portText)) throw new SocketAddressError(flag, text, `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) throw new SocketAddressError(flag, text, `port ${port} is beyond 65535`);
  if (port === 0 && mode === 'connect') throw new SocketAddressError(flag, text, 'cannot connect to port 0');
  return { mode, kind: 'tcp', host, port };
}

/** The address as the operator would write it, for logs. */
export function formatSocketAddress(address: SocketAddress): string {
  if (address.kind === 'unix') return `${address.mode}:unix:${address.path}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${address.mode}:${host}:${address.port}`;
}

/** True when two addresses name the same endpoint (the CLI refuses to use one socket for two roles). */
export function sameEndpoint(a: SocketAddress, b: SocketAddress): boolean {
  if (a.kind === 'unix' || b.kind === 'unix') return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path;
  return a.mode === b.mode && a.host === b.host && a.port === b.port && a.port !== 0;
}
