import { describe, expect, it } from 'vitest';
import {
  formatSocketAddress,
  parseSocketAddress,
  sameEndpoint,
  SocketAddressError,
} from '../../proxy/ports/socket-address.js';

describe('socket addresses', () => {
  it('parses the four forms', () => {
    expect(parseSocketAddress('--outdev', 'listen:127.0.0.1:9003')).toEqual({
      mode: 'listen',
      kind: 'tcp',
      host: '127.0.0.1',
      port: 9003,
    });
    expect(parseSocketAddress('--outdev', 'connect:example.org:1')).toEqual({
      mode: 'connect',
      kind: 'tcp',
      host: 'example.org',
      port: 1,
    });
    expect(parseSocketAddress('--outdev', 'listen:unix:/run/colo/out.sock')).toEqual({
      mode: 'listen',
      kind: 'unix',
      path: '/run/colo/out.sock',
    });
    expect(parseSocketAddress('--outdev', 'connect:unix:rel/p:x')).toEqual({
      mode: 'connect',
      kind: 'unix',
      path: 'rel/p:x',
    });
  });

  it('takes an IPv6 host in brackets and prints it back the same way', () => {
    const a = parseSocketAddress('--primary-in', 'listen:[::1]:0');
    expect(a).toEqual({ mode: 'listen', kind: 'tcp', host: '::1', port: 0 });
    expect(formatSocketAddress(a)).toBe('listen:[::1]:0');
  });

  it.each([
    ['tcp:127.0.0.1:1', /unknown mode "tcp"/],
    ['listen:127.0.0.1', /port "127.0.0.1" is not a number|missing :PORT/],
    ['listen:127.0.0.1:70000', /beyond 65535/],
    ['listen::9000', /empty host/],
    ['connect:127.0.0.1:0', /cannot connect to port 0/],
    ['listen:unix:', /empty unix socket path/],
    ['listen:::1:9000', /\[brackets\]/],
    ['listen:[::1:9000', /unterminated/],
    ['listen', /missing :PORT|empty host/],
  ])('rejects %s with an error naming the flag', (text, problem) => {
    let error: unknown;
    try {
      parseSocketAddress('--secondary-in', text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SocketAddressError);
    expect((error as Error).message).toMatch(/^--secondary-in: /);
    expect((error as Error).message).toMatch(problem);
  });

  it('sameEndpoint spots one socket given two roles, but not two kernel-chosen ports', () => {
    const p = (t: string) => parseSocketAddress('--x', t);
    expect(sameEndpoint(p('listen:127.0.0.1:9000'), p('listen:127.0.0.1:9000'))).toBe(true);
    expect(sameEndpoint(p('listen:127.0.0.1:0'), p('listen:127.0.0.1:0'))).toBe(false);
    expect(sameEndpoint(p('listen:unix:/a'), p('connect:unix:/a'))).toBe(true);
    expect(sameEndpoint(p('listen:unix:/a'), p('listen:127.0.0.1:9000'))).toBe(false);
  });
});
