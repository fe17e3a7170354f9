import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  describePassthroughError,
  parsePassthroughRule,
  parsePassthroughRules,
  PassthroughMatcher,
  type PassthroughRule,
} from '../../compare/passthrough.js';
import { dissect } from '../../compare/wire/dissect.js';
import { FrameInfo } from '../../compare/wire/frame-info.js';
import { buildArp, buildIcmp, buildIcmpv6, buildTcp, buildUdp } from '../support/wire-build.js';

function rule(text: string): PassthroughRule {
  const parsed = parsePassthroughRule(text);
  if (!parsed.ok) throw new Error(describePassthroughError(parsed.error, 'test'));
  return parsed.value;
}

function infoOf(frame: Buffer): FrameInfo {
  const info = new FrameInfo();
  expect(dissect(frame, 0, frame.length, info)).toBeNull();
  return info;
}

/** True when any of the rules matches the frame. */
function matches(rules: string[], frame: Buffer): boolean {
  return new PassthroughMatcher(rules.map(rule)).match(infoOf(frame)) >= 0;
}

const tcp = (src: string, dst: string, srcPort: number, dstPort: number, over = {}) =>
  buildTcp({ src, dst, srcPort, dstPort, seq: 1, ack: 1, flags: 0x10, payload: 'x', ...over });
const udp = (src: string, dst: string, srcPort: number, dstPort: number, over = {}) =>
  buildUdp({ src, dst, srcPort, dstPort, payload: 'x', ...over });

describe('parsing pass-through rules', () => {
  it('reads protocol, ports and prefixes into the canonical text', () => {
    expect(rule('tcp:22')).toMatchObject({ text: 'tcp:22', protocol: 'tcp', ports: { low: 22, high: 22 } });
    expect(rule(' udp:5353 , 10.0.0.0/8').text).toBe('udp:5353,10.0.0.0/8');
    expect(rule('any:8000-8100').ports).toEqual({ low: 8000, high: 8100 });
    expect(rule('10.1.2.3').text).toBe('any,10.1.2.3/32');
    expect(rule('fd00:0:0::/16,tcp').text).toBe('tcp,fd00::/16');
    expect(rule('icmp').ports).toBeNull();
  });

  it('names the rule, what was expected and the term received when a rule does not parse', () => {
    const cases: [string, string, RegExp][] = [
      ['tcp:70000', 'tcp:70000', /port N or a range/],
      ['tcp:90-80', 'tcp:90-80', /LOW <= HIGH/],
      ['icmp:7', 'icmp:7', /ports only with tcp, udp or any/],
      ['tcp,udp', 'udp', /at most one protocol/],
      ['sctp:9', 'sctp:9', /a protocol \(tcp, udp, icmp, icmpv6, any\)/],
      ['10.0.0.1/8', '10.0.0.1/8', /no bits set past its length/],
      ['10.0.0.0/33', '10.0.0.0/33', /IPv4 or IPv6 address or prefix/],
      ['', '', /a protocol/],
      ['icmp,fd00::/8', 'icmp,fd00::/8', /IPv4 prefixes with icmp/],
    ];
    for (const [text, received, expected] of cases) {
      const parsed = parsePassthroughRule(text);
      expect(parsed.ok, text).toBe(false);
      if (parsed.ok) continue;
      expect(parsed.error).toMatchObject({ rule: text, received });
      expect(parsed.error.expected).toMatch(expected);
    }
    const list = parsePassthroughRules(['tcp:22', 'udp:x']);
    expect(list.ok).toBe(false);
    if (!list.ok)
      expect(describePassthroughError(list.error, 'passthrough[1]')).toBe(
        'passthrough[1]: rule "udp:x": expected a port N or a range LOW-HIGH, within 0..65535 and LOW <= HIGH, got "udp:x"',
      );
  });
});

describe('matching frames', () => {
  it('matches a port on either side, so both directions of a flow pass', () => {
    expect(matches(['tcp:22'], tcp('10.0.0.1', '10.0.0.2', 40000, 22))).toBe(true);
    expect(matches(['tcp:22'], tcp('10.0.0.2', '10.0.0.1', 22, 40000))).toBe(true);
    expect(matches(['tcp:22'], tcp('10.0.0.2', '10.0.0.1', 80, 40000))).toBe(false);
    expect(matches(['tcp:22'], udp('10.0.0.2', '10.0.0.1', 22, 40000))).toBe(false);
    expect(matches(['any:8000-8100'], udp('10.0.0.2', '10.0.0.1', 53, 8100))).toBe(true);
    expect(matches(['any:8000-8100'], tcp('10.0.0.2', '10.0.0.1', 7999, 8101))).toBe(false);
  });

  it('needs every term of a rule and any one of its prefixes', () => {
    const frame = udp('10.9.0.5', '192.168.1.7', 5353, 5353);
    expect(matches(['udp:5353,10.0.0.0/8'], frame)).toBe(true);
    expect(matches(['udp:5353,172.16.0.0/12'], frame)).toBe(false);
    expect(matches(['udp:5353,172.16.0.0/12,192.168.0.0/23'], frame)).toBe(true);
    expect(matches(['tcp,10.0.0.0/8'], frame)).toBe(false);
    expect(matches(['10.9.0.4/31'], frame)).toBe(true);
    expect(matches(['10.9.0.6/31'], frame)).toBe(false);
  });

  it('matches IPv6 prefixes only against IPv6 frames', () => {
    const v6 = tcp('fd00::2', '2001:db8::1', 80, 40000);
    expect(matches(['fd00::/8'], v6)).toBe(true);
    expect(matches(['2001:db8::/33'], v6)).toBe(true);
    expect(matches(['2001:db9::/32'], v6)).toBe(false);
    expect(matches(['0.0.0.0/0'], v6)).toBe(false);
    expect(matches(['::/0'], v6)).toBe(true);
  });

  it('tells ICMP from ICMPv6 and never matches non-IP frames', () => {
    const ping = buildIcmp({ src: '10.0.0.1', dst: '10.0.0.2', id: 22 });
    const ping6 = buildIcmpv6({ src: 'fd00::1', dst: 'fd00::2' });
    expect(matches(['icmp'], ping)).toBe(true);
    expect(matches(['icmpv6'], ping)).toBe(false);
    expect(matches(['icmpv6'], ping6)).toBe(true);
    // The ICMP echo id sits in srcPort; a port rule is about TCP and UDP only.
    expect(matches(['any:22'], ping)).toBe(false);
    expect(matches(['any', '0.0.0.0/0'], buildArp({ senderIp: '10.0.0.1', targetIp: '10.0.0.2' }))).toBe(false);
  });

  it('leaves fragments to comparison under a port rule (later fragments carry no ports)', () => {
    expect(matches(['udp:53'], udp('10.0.0.1', '10.0.0.2', 53, 53, { moreFragments: true }))).toBe(false);
    expect(matches(['udp,10.0.0.0/8'], udp('10.0.0.1', '10.0.0.2', 53, 53, { moreFragments: true }))).toBe(true);
  });

  it('counts the frames each rule matched, first matching rule only', () => {
    const matcher = new PassthroughMatcher([rule('tcp:22'), rule('10.0.0.0/8')]);
    matcher.match(infoOf(tcp('10.0.0.1', '10.0.0.2', 22, 40000)));
    matcher.match(infoOf(udp('10.0.0.1', '10.0.0.2', 53, 53)));
    matcher.match(infoOf(udp('11.0.0.1', '11.0.0.2', 53, 53)));
    expect([...matcher.hits]).toEqual([1, 1]);
  });
});

describe('properties', () => {
  const port = fc.integer({ min: 0, max: 65535 });
  const v4 = fc.tuple(...Array.from({ length: 4 }, () => fc.integer({ min: 0, max: 255 })));

  it('the canonical text parses back to the same rule', () => {
    const ruleText = fc
      .record({
        protocol: fc.constantFrom('tcp', 'udp', 'icmp', 'icmpv6', 'any', ''),
        ports: fc.option(fc.tuple(port, port)),
        prefix: fc.option(fc.tuple(fc.constantFrom(4, 6), fc.uint8Array({ minLength: 16, maxLength: 16 }))),
        length: fc.integer({ min: 0, max: 128 }),
      })
      .map(({ protocol, ports, prefix, length }) => {
        const terms: string[] = [];
        if (protocol !== '') {
          const withPorts = ports !== null && protocol !== 'icmp' && protocol !== 'icmpv6';
          const [a, b] = ports ?? [0, 0];
          terms.push(withPorts ? `${protocol}:${Math.min(a, b)}-${Math.max(a, b)}` : protocol);
        }
        if (prefix !== null) {
          const [family, bytes] = prefix;
          const bits = family === 4 ? 32 : 128;
          const len = length % (bits + 1);
          const masked = bytes.slice(0, bits / 8).map((byte, i) => {
            const keep = Math.max(0, Math.min(8, len - 8 * i));
            return byte & ((0xff << (8 - keep)) & 0xff);
          });
          const text =
            family === 4
              ? [...masked].join('.')
              : Array.from({ length: 8 }, (_, i) => ((masked[2 * i] << 8) | masked[2 * i + 1]).toString(16)).join(':');
          terms.push(`${text}/${len}`);
        }
        return terms.join(',');
      })
      // icmp goes with IPv4 prefixes only, icmpv6 with IPv6 ones (a separate test checks the refusal).
      .filter((text) => text !== '' && !/^icmp,.*:/.test(text) && !/^icmpv6,[^:]*$/.test(text));
    fc.assert(
      fc.property(ruleText, (text) => {
        const first = rule(text);
        const again = rule(first.text);
        expect(again).toEqual(first);
      }),
    );
  });

  it('an IPv4 prefix matches exactly the frames whose source or destination shares its first bits', () => {
    const toNumber = (a: number[]) => ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
    fc.assert(
      fc.property(v4, v4, v4, fc.integer({ min: 0, max: 32 }), (net, src, dst, length) => {
        const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
        const network = (toNumber(net) & mask) >>> 0;
        const netText = [24, 16, 8, 0].map((shift) => (network >>> shift) & 0xff).join('.');
        const expected = (toNumber(src) & mask) >>> 0 === network || (toNumber(dst) & mask) >>> 0 === network;
        const frame = udp(src.join('.'), dst.join('.'), 1, 2);
        expect(matches([`${netText}/${length}`], frame)).toBe(expected);
      }),
    );
  });

  it('a port range matches exactly the frames with either port inside it', () => {
    fc.assert(
      fc.property(port, port, port, port, (a, b, src, dst) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        const inside = (p: number) => p >= low && p <= high;
        const frame = tcp('10.0.0.1', '10.0.0.2', src, dst);
        expect(matches([`tcp:${low}-${high}`], frame)).toBe(inside(src) || inside(dst));
      }),
    );
  });
});
