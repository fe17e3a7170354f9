/** fast-check generators for frame specs shared by the property tests. */
import fc from 'fast-check';
import type { EthernetSpec, IcmpSpec, TcpSpec, UdpSpec } from '../../support/wire-build.js';
import { encodeTcpOptions } from '../../../compare/wire/tcp.js';

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const mac = fc
  .uint8Array({ minLength: 6, maxLength: 6 })
  .map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':'));

export const addressPair = fc.oneof(fc.tuple(ipv4, ipv4), fc.tuple(ipv6, ipv6));

export const ethernetSpec: fc.Arbitrary<EthernetSpec> = fc.record(
  {
    srcMac: mac,
    dstMac: mac,
    vlanId: fc.integer({ min: 0, max: 4095 }),
    serviceVlanId: fc.integer({ min: 0, max: 4095 }),
    padTo: fc.integer({ min: 0, max: 128 }),
  },
  { requiredKeys: [] },
);

const payload = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));

const tcpOptions = fc
  .array(
    fc.oneof(
      fc.record({ kind: fc.constant(2 as const), mss: u16 }),
      fc.record({ kind: fc.constant(3 as const), shift: fc.integer({ min: 0, max: 14 }) }),
      fc.record({ kind: fc.constant(4 as const) }),
      fc.record({ kind: fc.constant(8 as const), value: u32, echo: u32 }),
    ),
    { maxLength: 3 },
  )
  .map((options) => encodeTcpOptions(options));

export const tcpSpec: fc.Arbitrary<TcpSpec> = fc
  .tuple(
    addressPair,
    ethernetSpec,
    fc.record({
      srcPort: u16,
      dstPort: u16,
      seq: u32,
      ack: u32,
      flags: fc.integer({ min: 0, max: 0xff }),
      window: u16,
      payload,
      options: tcpOptions,
      ttl: fc.integer({ min: 0, max: 255 }),
      ipId: u16,
    }),
  )
  .map(([[src, dst], l2, rest]) => ({ ...l2, ...rest, src, dst }));

export const udpSpec: fc.Arbitrary<UdpSpec> = fc
  .tuple(addressPair, ethernetSpec, fc.record({ srcPort: u16, dstPort: u16, payload }))
  .map(([[src, dst], l2, rest]) => ({ ...l2, ...rest, src, dst }));

export const icmpSpec = (family: 4 | 6): fc.Arbitrary<IcmpSpec> =>
  fc
    .tuple(
      fc.tuple(family === 4 ? ipv4 : ipv6, family === 4 ? ipv4 : ipv6),
      ethernetSpec,
      fc.record({
        type: fc.integer({ min: 0, max: 255 }),
        code: fc.integer({ min: 0, max: 255 }),
        id: u16,
        seq: u16,
        payload,
      }),
    )
    .map(([[src, dst], l2, rest]) => ({ ...l2, ...rest, src, dst }));
