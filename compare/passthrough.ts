/**
 * Pass-through rules: traffic an operator chose not to protect (management, health checks, a protocol known
 * to differ harmlessly between the VMs). A frame that matches is released from the primary at once and
 * dropped from the secondary, and the connection table never sees it (compare/engine.ts).
 *
 * Rule text (docs/configuration.md, "Pass-through rules"): comma-separated terms, all of which must hold.
 *   PROTOCOL[:PORTS]   tcp, udp, icmp, icmpv6 or any; PORTS is `N` or `N-M` (tcp, udp, or any = tcp or udp)
 *   PREFIX             an IPv4 or IPv6 address, with or without /LENGTH; several prefixes: any one may match
 * Ports and prefixes match either side of the frame (source or destination), so one rule covers both
 * directions of a flow. Examples: `tcp:22`, `udp:5353,10.0.0.0/8`, `any:8000-8100`, `fd00::/8`, `icmp`.
 *
 * Parsing returns typed errors (rules arrive from YAML, flags and the control endpoint at run time, and a bad
 * one must not take the process down); matching reads the dissected FrameInfo and allocates nothing.
 */
import { formatIp, ipBytes, ipFamily } from './wire/address.js';
import { IpProtocol, type FrameInfo } from './wire/frame-info.js';

export type PassthroughProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'any';

export interface PortRange {
  low: number;
  high: number;
}

export interface AddressPrefix {
  family: 4 | 6;
  /** The network address, 4 or 16 bytes, with every bit past `length` zero. */
  bytes: Uint8Array;
  length: number;
}

export interface PassthroughRule {
  /** The rule in its canonical form: what /stats lists and what parses back to the same rule. */
  text: string;
  protocol: PassthroughProtocol;
  ports: PortRange | null;
  prefixes: readonly AddressPrefix[];
}

/** A rule that did not parse: the rule as given, what a term should have been, and the term received. */
export interface PassthroughRuleError {
  rule: string;
  expected: string;
  received: string;
}

export type PassthroughParse<T> = { ok: true; value: T } | { ok: false; error: PassthroughRuleError };

const protocols: readonly PassthroughProtocol[] = ['tcp', 'udp', 'icmp', 'icmpv6', 'any'];
const PROTOCOL_EXPECTED = `a protocol (${protocols.join(', ')}), PROTOCOL:PORT or PROTOCOL:LOW-HIGH`;
const PREFIX_EXPECTED = 'an IPv4 or IPv6 address or prefix (10.0.0.0/8, fd00::/8)';

/** The message for logs and ConfigError: `FIELD: rule "R": expected E, got "X"`. */
export function describePassthroughError(error: PassthroughRuleError, field: string): string {
  return `${field}: rule ${JSON.stringify(error.rule)}: expected ${error.expected}, got ${JSON.stringify(error.received)}`;
}

export function parsePassthroughRule(text: string): PassthroughParse<PassthroughRule> {
  const fail = (expected: string, received: string): PassthroughParse<PassthroughRule> => ({
    ok: false,
    error: { rule: text, expected, received },
  });
  if (typeof text !== 'string') return fail('a rule as text', String(text));
  const terms = text.split(',').map((term) => term.trim());
  if (terms.length === 1 && terms[0] === '') return fail(`${PROTOCOL_EXPECTED} or ${PREFIX_EXPECTED}`, text);
  let protocol: PassthroughProtocol | null = null;
  let ports: PortRange | null = null;
  const prefixes: AddressPrefix[] = [];
  for (const term of terms) {
    const [name, portText, ...extra] = term.split(':');
    if (protocols.includes(name as PassthroughProtocol)) {
      if (protocol !== null) return fail('at most one protocol term', term);
      protocol = name as PassthroughProtocol;
      if (extra.length > 0) return fail(PROTOCOL_EXPECTED, term);
      if (portText === undefined) continue;
      if (protocol === 'icmp' || protocol === 'icmpv6') return fail('ports only with tcp, udp or any', term);
      const range = parsePorts(portText);
      if (range === null) return fail('a port N or a range LOW-HIGH, within 0..65535 and LOW <= HIGH', term);
      ports = range;
      continue;
    }
    const prefix = parsePrefix(term);
    if (prefix === null) return fail(`${PROTOCOL_EXPECTED} or ${PREFIX_EXPECTED}`, term);
    if (prefix === 'host-bits') return fail('a prefix with no bits set past its length', term);
    prefixes.push(prefix);
  }
  const rule = { protocol: protocol ?? 'any', ports, prefixes };
  if (rule.protocol === 'icmp' && prefixes.some((p) => p.family === 6))
    return fail('IPv4 prefixes with icmp (ICMPv6 is icmpv6)', text);
  if (rule.protocol === 'icmpv6' && prefixes.some((p) => p.family === 4))
    return fail('IPv6 prefixes with icmpv6', text);
  return { ok: true, value: { text: formatRule(rule), ...rule } };
}

/** Every rule, or the first that fails. */
export function parsePassthroughRules(texts: readonly string[]): PassthroughParse<PassthroughRule[]> {
  const rules: PassthroughRule[] = [];
  for (const text of texts) {
    const parsed = parsePassthroughRule(text);
    if (!parsed.ok) return parsed;
    rules.push(parsed.value);
  }
  return { ok: true, value: rules };
}

function parsePorts(text: string): PortRange | null {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
  if (match === null) return null;
  const low = Number(match[1]);
  const high = match[2] === undefined ? low : Number(match[2]);
  return low <= high && high <= 65535 ? { low, high } : null;
}

function parsePrefix(text: string): AddressPrefix | 'host-bits' | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = ipFamily(address);
  if (family === 0) return null;
  let bytes: Buffer;
  try {
    bytes = ipBytes(address);
  } catch {
    return null;
  }
  const bits = bytes.length * 8;
  const lengthText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bits) return null;
  const length = Number(lengthText);
  for (let bit = length; bit < bits; bit++) if ((bytes[bit >> 3] & (0x80 >> (bit & 7))) !== 0) return 'host-bits';
  return { family, bytes: new Uint8Array(bytes), length };
}

function formatRule(rule: Omit<PassthroughRule, 'text'>): string {
  const ports = rule.ports === null ? '' : `:${formatPorts(rule.ports)}`;
  const terms = [`${rule.protocol}${ports}`, ...rule.prefixes.map(formatPrefix)];
  return terms.join(',');
}

function formatPorts(range: PortRange): string {
  return range.low === range.high ? String(range.low) : `${range.low}-${range.high}`;
}

function formatPrefix(prefix: AddressPrefix): string {
  return `${formatIp(Buffer.from(prefix.bytes), 0, prefix.bytes.length)}/${prefix.length}`;
}

/**
 * The compiled rules. `match()` answers for one dissected frame: the index of the first rule that matches,
 * or -1. It allocates nothing; `hits` counts the frames each rule matched (both sides).
 */
export class PassthroughMatcher {
  readonly rules: readonly PassthroughRule[];
  readonly hits: Float64Array;

  constructor(rules: readonly PassthroughRule[]) {
    this.rules = rules;
    this.hits = new Float64Array(rules.length);
  }

  get size(): number {
    return this.rules.length;
  }

  match(info: FrameInfo): number {
    if (info.ipVersion === 0) return -1;
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      if (matchesRule(rules[i], info)) {
        this.hits[i]++;
        return i;
      }
    }
    return -1;
  }
}

function matchesRule(rule: PassthroughRule, info: FrameInfo): boolean {
  const proto = info.ipProtocol;
  switch (rule.protocol) {
    case 'tcp':
      if (proto !== IpProtocol.TCP) return false;
      break;
    case 'udp':
      if (proto !== IpProtocol.UDP) return false;
      break;
    case 'icmp':
      if (proto !== IpProtocol.ICMP || info.ipVersion !== 4) return false;
      break;
    case 'icmpv6':
      if (proto !== IpProtocol.ICMPV6 || info.ipVersion !== 6) return false;
      break;
    case 'any':
      break;
  }
  const ports = rule.ports;
  if (ports !== null) {
    // Fragments are left to comparison whole: later fragments carry no ports, so a port rule cannot see them.
    if ((proto !== IpProtocol.TCP && proto !== IpProtocol.UDP) || info.isFragment || info.moreFragments) return false;
    const src = info.srcPort;
    const dst = info.dstPort;
    if ((src < ports.low || src > ports.high) && (dst < ports.low || dst > ports.high)) return false;
  }
  const prefixes = rule.prefixes;
  if (prefixes.length === 0) return true;
  for (let i = 0; i < prefixes.length; i++) {
    const prefix = prefixes[i];
    if (prefix.family !== info.ipVersion) continue;
    if (prefixCovers(prefix, info.buf, info.srcAddrOffset) || prefixCovers(prefix, info.buf, info.dstAddrOffset))
      return true;
  }
  return false;
}

function prefixCovers(prefix: AddressPrefix, buf: Buffer, offset: number): boolean {
  const bytes = prefix.bytes;
  const whole = prefix.length >> 3;
  for (let i = 0; i < whole; i++) if (buf[offset + i] !== bytes[i]) return false;
  const rest = prefix.length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (buf[offset + whole] & mask) === bytes[whole];
}
