import { buildArp } from '../support/wire-build.js';
import { buildIpRaw, icmp, scenarioSuite, udp, type Scenario } from './scenarios.js';

/** UDP, ICMP and other-protocol comparison (reference 1.2 and 1.6), QEMU vs colo-proxy. */

const headerOnly = { ttl: 17, ipId: 4242, srcMac: '52:54:00:aa:bb:cc', dstMac: '52:54:00:dd:ee:ff' };

const scenarios: Scenario[] = [
  {
    name: 'udp match',
    about: 'identical datagrams: the primary is released, no checkpoint',
    frames: { P: udp('hello'), S: udp('hello') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'udp payload mismatch',
    about: 'a payload difference holds the primary and requests a checkpoint; the flush releases it',
    frames: { P: udp('hello'), S: udp('hellx') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 1 },
      { released: ['P'], requests: 1 },
    ],
  },
  {
    name: 'udp length mismatch',
    about: 'a longer secondary datagram is a mismatch',
    frames: { P: udp('hello'), S: udp('hello!') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
  },
  {
    name: 'udp header-only differences',
    about: 'TTL, IP ID and MACs are not compared for UDP',
    frames: { P: udp('hello'), S: udp('hello', headerOnly) },
    steps: [{ send: 'sec', frames: ['S'] }, { send: 'pri', frames: ['P'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'icmp match',
    about: 'identical echo replies: the primary is released',
    frames: { P: icmp(7, 1, 'ping'), S: icmp(7, 1, 'ping') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'icmp mismatch',
    about: 'a different echo payload holds the primary and requests a checkpoint',
    frames: { P: icmp(7, 1, 'ping'), S: icmp(7, 1, 'pong') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 1 },
      { released: ['P'], requests: 1 },
    ],
  },
  {
    name: 'icmp sequence mismatch',
    about: 'the ICMP header (echo sequence) is compared',
    frames: { P: icmp(7, 1, 'ping'), S: icmp(7, 2, 'ping') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
  },
  {
    name: 'icmp header-only differences',
    about: 'TTL, IP ID and MACs are not compared for ICMP',
    frames: { P: icmp(7, 1, 'ping'), S: icmp(7, 1, 'ping', headerOnly) },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'udp two primaries, secondaries in order',
    about: 'QEMU matches the newest primary first: S1 against P2 mismatches; colo-proxy matches FIFO',
    difference: 'FIFO matching for UDP/ICMP (QEMU newest-first)',
    frames: { P1: udp('one'), P2: udp('two'), S1: udp('one'), S2: udp('two') },
    steps: [
      { send: 'pri', frames: ['P1', 'P2'] },
      { settle: true },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { send: 'sec', frames: ['S2'] },
      { settle: true },
    ],
    qemu: [
      { released: [], requests: 0 },
      { released: [], requests: 1 },
      { released: ['P2', 'P1'], requests: 1 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: ['P1'], requests: 0 },
      { released: ['P1', 'P2'], requests: 0 },
    ],
  },
  {
    name: 'udp two primaries, secondaries newest first',
    about: 'S2 then S1: QEMU pairs each with its own primary; colo-proxy looks for the oldest primary, P1',
    difference: 'FIFO matching for UDP/ICMP (QEMU newest-first)',
    frames: { P1: udp('one'), P2: udp('two'), S1: udp('one'), S2: udp('two') },
    steps: [
      { send: 'pri', frames: ['P1', 'P2'] },
      { settle: true },
      { send: 'sec', frames: ['S2'] },
      { settle: true },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { flush: true },
    ],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P2'], requests: 0 },
      { released: ['P2', 'P1'], requests: 0 },
      { released: ['P2', 'P1'], requests: 0 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: [], requests: 1 },
      { released: [], requests: 1 },
      { released: ['P1', 'P2'], requests: 1 },
    ],
  },
  {
    name: 'icmp echo ids, secondaries in order',
    about: 'QEMU keys all ICMP between two hosts as one flow, newest first; colo-proxy keys echo by id',
    difference: 'ICMP echo keyed by id; FIFO matching (QEMU one flow, newest-first)',
    frames: { P1: icmp(1, 1, 'a'), P2: icmp(2, 1, 'b'), S1: icmp(1, 1, 'a'), S2: icmp(2, 1, 'b') },
    steps: [
      { send: 'pri', frames: ['P1', 'P2'] },
      { settle: true },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { send: 'sec', frames: ['S2'] },
      { settle: true },
    ],
    qemu: [
      { released: [], requests: 0 },
      { released: [], requests: 1 },
      { released: ['P2', 'P1'], requests: 1 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: ['P1'], requests: 0 },
      { released: ['P1', 'P2'], requests: 0 },
    ],
  },
  {
    name: 'udp mismatch, then more primaries on the flow',
    about: 'QEMU notifies again on every later enqueue of a diverged flow; colo-proxy once per divergence',
    difference: 'one checkpoint request per divergence (QEMU: one per later enqueue)',
    frames: { P1: udp('one'), S1: udp('uno'), P2: udp('two'), P3: udp('three') },
    steps: [
      { send: 'pri', frames: ['P1'] },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { send: 'pri', frames: ['P2'] },
      { settle: true },
      { send: 'pri', frames: ['P3'] },
      { settle: true },
    ],
    qemu: [
      { released: [], requests: 1 },
      { released: [], requests: 2 },
      { released: [], requests: 3 },
    ],
    ours: [
      { released: [], requests: 1 },
      { released: [], requests: 1 },
      { released: [], requests: 1 },
    ],
  },
  {
    name: 'other IP protocol, identical',
    about: 'an IP protocol with no comparator of its own (253) is compared as bytes',
    frames: {
      P: buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253, payload: 'raw bytes' }),
      S: buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253, payload: 'raw bytes' }),
    },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'other IP protocol, TTL, IP ID and MACs differ',
    about: 'QEMU compares every byte of other protocols; colo-proxy skips TTL, IP ID, checksum and Ethernet header',
    difference: 'other IP protocols compared after normalising TTL/IP ID/checksum (QEMU all bytes)',
    frames: {
      P: buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253, payload: 'raw bytes' }),
      S: buildIpRaw({ ...{ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253, payload: 'raw bytes' }, ...headerOnly }),
    },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
    ours: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'other IP protocol, payload differs',
    about: 'a payload difference in another protocol is a mismatch in both',
    frames: {
      P: buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253, payload: 'raw bytes' }),
      S: buildIpRaw({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 253, payload: 'raw bytez' }),
    },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
  },
  {
    name: 'udp checksum differs',
    about: 'same datagram, different UDP checksum field: QEMU compares it, colo-proxy skips it',
    difference: 'UDP/ICMP checksum field not compared (QEMU compares it)',
    frames: { P: udp('hello'), S: udp('hello', { checksum: 0x1234 }) },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
    ours: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'udp over IPv6',
    about: 'QEMU releases IPv6 from the primary uncompared (and drops the secondary); colo-proxy compares it',
    difference: 'IPv6 compared like IPv4 (QEMU: unsupported, released uncompared)',
    frames: {
      P: udp('six', { src: 'fd00::1', dst: 'fd00::2' }),
      S: udp('six', { src: 'fd00::1', dst: 'fd00::2' }),
    },
    steps: [{ send: 'pri', frames: ['P'] }, { settle: true }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [
      { released: ['P'], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
  },
  {
    name: 'udp in a VLAN',
    about: 'QEMU releases 802.1Q frames from the primary uncompared; colo-proxy compares them',
    difference: 'VLAN frames compared, tag skipped (QEMU: unsupported, released uncompared)',
    frames: { P: udp('tagged', { vlanId: 42 }), S: udp('tagged', { vlanId: 42 }) },
    steps: [{ send: 'pri', frames: ['P'] }, { settle: true }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [
      { released: ['P'], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
  },
  {
    name: 'ARP from the primary',
    about: 'QEMU forwards a non-IP primary frame at once, without waiting for the secondary',
    frames: { P: buildArp({ senderIp: '10.0.0.1', targetIp: '10.0.0.2' }) },
    steps: [{ send: 'pri', frames: ['P'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
];

scenarioSuite('differential: UDP, ICMP and other protocols (QEMU colo-compare vs colo-proxy compare)', scenarios);
