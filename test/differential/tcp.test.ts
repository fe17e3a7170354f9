import { scenarioSuite, tcp, TcpFlag, withTrailer, type Scenario } from './scenarios.js';

/** TCP comparison (reference 1.4 and 1.5), QEMU vs colo-proxy. Guest seq space starts at 1000. */

const { SYN, ACK, FIN, RST } = TcpFlag;

/** A pure ACK: 54 bytes, or 60 with Ethernet padding whose content we choose. */
const pureAck = (ack: number, padding?: number): Buffer => {
  const frame = tcp(1000, '', { flags: ACK, ack, padTo: padding === undefined ? undefined : 60 });
  return padding === undefined ? frame : withTrailer(frame, 54, padding);
};

const scenarios: Scenario[] = [
  {
    name: 'tcp exact match',
    about: 'same seq, same bytes: the primary is released',
    frames: { P: tcp(1000, 'abcdef'), S: tcp(1000, 'abcdef') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp header-only differences',
    about: 'TTL, IP ID and MACs are not compared for TCP',
    frames: {
      P: tcp(1000, 'abcdef'),
      S: tcp(1000, 'abcdef', { ttl: 17, ipId: 999, srcMac: '52:54:00:aa:bb:cc' }),
    },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp payload mismatch',
    about: 'different bytes hold the primary and request a checkpoint; the flush releases it',
    frames: { P: tcp(1000, 'abcdef'), S: tcp(1000, 'abcxef') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 1 },
      { released: ['P'], requests: 1 },
    ],
  },
  {
    name: 'tcp one primary segment vs two secondary segments',
    about: 're-segmentation: P "abcdef" matches S "abc" + "def"',
    frames: { P: tcp(1000, 'abcdef'), S1: tcp(1000, 'abc'), S2: tcp(1003, 'def') },
    steps: [
      { send: 'pri', frames: ['P'] },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { send: 'sec', frames: ['S2'] },
      { settle: true },
    ],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
  },
  {
    name: 'tcp two primary segments vs one secondary segment',
    about: 're-segmentation: P "abc" + "def" match S "abcdef"',
    frames: { P1: tcp(1000, 'abc'), P2: tcp(1003, 'def'), S: tcp(1000, 'abcdef') },
    steps: [
      { send: 'pri', frames: ['P1'] },
      { send: 'sec', frames: ['S'] },
      { settle: true },
      { send: 'pri', frames: ['P2'] },
      { settle: true },
    ],
    qemu: [
      { released: ['P1'], requests: 0 },
      { released: ['P1', 'P2'], requests: 0 },
    ],
  },
  {
    name: 'tcp re-segmented with a difference in the second part',
    about: 'P "abcdef" vs S "abc" + "dXf": the second part mismatches',
    frames: { P: tcp(1000, 'abcdef'), S1: tcp(1000, 'abc'), S2: tcp(1003, 'dXf') },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S1', 'S2'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
  },
  {
    name: 'tcp out-of-order primary',
    about: 'primaries arriving out of order are released in seq order',
    frames: { P2: tcp(1003, 'def'), P1: tcp(1000, 'abc'), S1: tcp(1000, 'abc'), S2: tcp(1003, 'def') },
    steps: [
      { send: 'pri', frames: ['P2', 'P1'] },
      { settle: true },
      { send: 'sec', frames: ['S1'] },
      { settle: true },
      { send: 'sec', frames: ['S2'] },
      { settle: true },
    ],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P1'], requests: 0 },
      { released: ['P1', 'P2'], requests: 0 },
    ],
  },
  {
    name: 'tcp min-ack: primary acks more than the secondary',
    about: 'same bytes, partial overlap, P.ack > S.ack: QEMU asks at once; colo-proxy waits for the ack',
    difference: 'min-ack rule is a wait, a checkpoint only at compare_timeout (QEMU: an immediate mismatch)',
    frames: { S: tcp(1000, 'abcdef', { ack: 90 }), P: tcp(1000, 'abc', { ack: 100 }) },
    steps: [
      { send: 'sec', frames: ['S'] },
      { barrier: true },
      { send: 'pri', frames: ['P'] },
      { settle: true },
      { flush: true },
    ],
    qemu: [
      { released: [], requests: 1 },
      { released: ['P'], requests: 1 },
    ],
    ours: [
      { released: [], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
  },
  {
    name: 'tcp min-ack: secondary acks more than the primary',
    about: 'same bytes, partial overlap, P.ack <= S.ack: released',
    frames: { S: tcp(1000, 'abcdef', { ack: 100 }), P: tcp(1000, 'abc', { ack: 90 }) },
    steps: [{ send: 'sec', frames: ['S'] }, { barrier: true }, { send: 'pri', frames: ['P'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp min-ack: the secondary ack going back (pure ACK)',
    about: 'S acks 200 then 150 (reordered): QEMU keeps the last (150 < 180), colo-proxy the highest (200)',
    difference: 'highest ack seen for the min-ack rule (QEMU: last)',
    frames: {
      S1: tcp(1000, 'abcdef', { ack: 200 }),
      S2: tcp(1006, '', { flags: ACK, ack: 150 }),
      P: tcp(1000, 'abc', { ack: 180 }),
    },
    steps: [{ send: 'sec', frames: ['S1', 'S2'] }, { barrier: true }, { send: 'pri', frames: ['P'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
    ours: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp min-ack: the secondary ack going back (data)',
    about: 'S "abc" acks 200, then S "def" acks 150; P "abcd" acking 180: released by colo-proxy only',
    difference: 'highest ack seen for the min-ack rule (QEMU: last)',
    frames: {
      S1: tcp(1000, 'abc', { ack: 200 }),
      S2: tcp(1003, 'def', { ack: 150 }),
      P: tcp(1000, 'abcd', { ack: 180 }),
    },
    steps: [{ send: 'sec', frames: ['S1', 'S2'] }, { barrier: true }, { send: 'pri', frames: ['P'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
    ours: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp min-ack: ack across the 2^32 wrap',
    about: 'S acks 0xffffff00 then 0x10 (later, across the wrap); P acking 0x08 is released by both',
    frames: {
      S1: tcp(1000, 'abcdef', { ack: 0xffffff00 }),
      S2: tcp(1006, '', { flags: ACK, ack: 0x10 }),
      P: tcp(1000, 'abc', { ack: 0x08 }),
    },
    steps: [{ send: 'sec', frames: ['S1', 'S2'] }, { barrier: true }, { send: 'pri', frames: ['P'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp exact match ignores ack',
    about: 'same seq and bytes, P acks more: QEMU releases (no ack check); colo-proxy waits for the ack',
    difference: 'min-ack rule applies to exact matches too (QEMU exempts them)',
    frames: { S: tcp(1000, 'abc', { ack: 90 }), P: tcp(1000, 'abc', { ack: 100 }) },
    steps: [
      { send: 'sec', frames: ['S'] },
      { barrier: true },
      { send: 'pri', frames: ['P'] },
      { settle: true },
      { flush: true },
    ],
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
    name: 'tcp pure ACK waits for a secondary packet',
    about: 'a primary pure ACK is held until the secondary sends something on the connection',
    frames: { P: pureAck(5100), S: pureAck(5100) },
    steps: [{ send: 'pri', frames: ['P'] }, { settle: true }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [
      { released: [], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
  },
  {
    name: 'tcp pure ACKs with different acks',
    about: 'a primary without payload is released whatever the secondary acks',
    frames: { P: pureAck(5100), S: pureAck(5200) },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp pure ACK acking more than the secondary',
    about: 'P acks 5200, S acks 5100: QEMU releases P (any secondary packet will do); colo-proxy waits',
    difference: 'a primary pure ACK is released once the secondary acked as much (QEMU: any secondary packet)',
    frames: { P: pureAck(5200), S: pureAck(5100) },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }, { flush: true }],
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
    name: 'tcp SYN, FIN and RST',
    about: 'segments without payload are released once the secondary has sent its copy',
    frames: {
      PSYN: tcp(999, '', { flags: SYN | ACK }),
      SSYN: tcp(999, '', { flags: SYN | ACK }),
      PFIN: tcp(1000, '', { flags: FIN | ACK }),
      SFIN: tcp(1000, '', { flags: FIN | ACK }),
      PRST: tcp(1001, '', { flags: RST }),
      SRST: tcp(1001, '', { flags: RST }),
    },
    steps: [
      { send: 'pri', frames: ['PSYN'] },
      { send: 'sec', frames: ['SSYN'] },
      { settle: true },
      { send: 'pri', frames: ['PFIN'] },
      { send: 'sec', frames: ['SFIN'] },
      { settle: true },
      { send: 'pri', frames: ['PRST'] },
      { send: 'sec', frames: ['SRST'] },
      { settle: true },
    ],
    qemu: [
      { released: ['PSYN'], requests: 0 },
      { released: ['PSYN', 'PFIN'], requests: 0 },
      { released: ['PSYN', 'PFIN', 'PRST'], requests: 0 },
    ],
  },
  {
    name: 'tcp FIN against RST',
    about: 'the primary closes, the secondary resets: QEMU does not look at flags; colo-proxy diverges',
    difference: 'SYN/FIN/RST must agree at the same stream offset (QEMU: no flag handling)',
    frames: { P: tcp(1000, '', { flags: FIN | ACK }), S: tcp(1000, '', { flags: RST | ACK }) },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: ['P'], requests: 0 },
      { released: ['P'], requests: 0 },
    ],
    ours: [
      { released: [], requests: 1 },
      { released: ['P'], requests: 1 },
    ],
  },
  {
    name: 'tcp retransmit',
    about: 'a segment already compared is released again when both sides retransmit it',
    frames: { P: tcp(1000, 'abc'), S: tcp(1000, 'abc'), PR: tcp(1000, 'abc', { ipId: 2 }), SR: tcp(1000, 'abc') },
    steps: [
      { send: 'pri', frames: ['P'] },
      { send: 'sec', frames: ['S'] },
      { settle: true },
      { send: 'pri', frames: ['PR'] },
      { send: 'sec', frames: ['SR'] },
      { settle: true },
    ],
    qemu: [
      { released: ['P'], requests: 0 },
      { released: ['P', 'PR'], requests: 0 },
    ],
  },
  {
    name: 'tcp Ethernet padding',
    about: 'pure ACKs padded to 60 bytes with different padding: QEMU compares padding as payload',
    difference: 'Ethernet padding not counted as TCP payload',
    frames: { P: pureAck(5100, 0x00), S: pureAck(5100, 0xee) },
    steps: [{ send: 'pri', frames: ['P'] }, { send: 'sec', frames: ['S'] }, { settle: true }],
    qemu: [{ released: [], requests: 1 }],
    ours: [{ released: ['P'], requests: 0 }],
  },
  {
    name: 'tcp two connections flushed',
    about: 'held primaries of two connections are flushed connection by connection, each in seq order',
    frames: {
      A2: tcp(1003, 'def'),
      B1: tcp(7000, 'xyz', { srcPort: 81 }),
      A1: tcp(1000, 'abc'),
    },
    steps: [{ send: 'pri', frames: ['A2', 'B1', 'A1'] }, { settle: true }, { flush: true }],
    qemu: [
      { released: [], requests: 0 },
      { released: ['A1', 'A2', 'B1'], requests: 0 },
    ],
  },
];

scenarioSuite('differential: TCP (QEMU colo-compare vs colo-proxy compare)', scenarios);
