/**
 * Hex fixtures: full Ethernet frames. Each was decoded by tshark 4.0.17 (Debian bookworm), which agreed
 * with the field values written next to it and reported every IP, TCP, UDP, ICMP and ICMPv6 checksum as
 * good; the tests assert our views read and emit exactly these bytes.
 */
export const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** IPv4 TCP 192.0.2.1:40000 -> 192.0.2.2:80, seq 0x01020304, ack 0xa0b0c0d0, PSH|ACK, win 502, DF, id 0x1234, "GET /\r\n". */
export const tcp4 = hex(`
  525400000002 525400000001 0800
  4500 002f 1234 4000 40 06 a491 c0000201 c0000202
  9c40 0050 01020304 a0b0c0d0 50 18 01f6 5341 0000
  474554202f0d0a`);

/** IPv4 TCP SYN seq 100 with options MSS 1460, SACK permitted, timestamps 1/0, window scale 7 (+1 END pad). */
export const tcp4Syn = hex(`
  525400000002 525400000001 0800
  4500 003c 0000 0000 40 06 f6b8 c0000201 c0000202
  9c40 0050 00000064 00000000 a0 02 ffff 210e 0000
  020405b4 0402 080a0000000100000000 030307 00`);

/** 802.1Q VLAN 100, IPv6 TCP [2001:db8::1]:443 -> [2001:db8::2]:50000, seq 0xfffffff0, ack 5, FIN|ACK, "bye". */
export const tcp6Vlan = hex(`
  525400000002 525400000001 8100 0064 86dd
  6000 0000 0017 06 40 20010db8000000000000000000000001 20010db8000000000000000000000002
  01bb c350 fffffff0 00000005 50 11 ffff c7e0 0000
  627965`);

/** IPv4 UDP 192.0.2.1:5353 -> 192.0.2.2:53, "abc", Ethernet-padded to 60 bytes (15 bytes of padding). */
export const udp4Padded = hex(`
  525400000002 525400000001 0800
  4500 001f 0000 0000 40 11 f6ca c0000201 c0000202
  14e9 0035 000b a253 616263
  000000000000000000000000000000`);

/** IPv6 UDP [2001:db8::1]:5353 -> [ff02::fb]:5353, "q". */
export const udp6 = hex(`
  525400000002 525400000001 86dd
  6000 0000 0009 11 40 20010db8000000000000000000000001 ff0200000000000000000000000000fb
  14e9 14e9 0009 3752 71`);

/** IPv4 ICMP echo request id 0x4242 seq 7 "ping". */
export const icmp4Echo = hex(`
  525400000002 525400000001 0800
  4500 0020 0000 0000 40 01 f6d9 c0000201 c0000202
  08 00 d6e5 4242 0007 70696e67`);

/** IPv6 ICMPv6 echo request fe80::1 -> fe80::2, id 0x4242 seq 7 "ping", behind hop-by-hop (8) and destination options (16). */
export const icmp6EchoExt = hex(`
  525400000002 525400000001 86dd
  6000 0000 0024 00 40 fe800000000000000000000000000001 fe800000000000000000000000000002
  3c 00 000000000000
  3a 01 0000000000000000000000000000
  80 00 619a 4242 0007 70696e67`);

/** ARP request: who has 192.0.2.2, tell 192.0.2.1 (52:54:00:00:00:01), to broadcast. */
export const arpRequest = hex(`
  ffffffffffff 525400000001 0806
  0001 0800 06 04 0001 525400000001 c0000201 000000000000 c0000202`);

/** IPv4 protocol 47 (GRE) with a 4-byte payload. */
export const gre4 = hex(`
  525400000002 525400000001 0800
  4500 0018 0000 0000 40 2f f6b3 c0000201 c0000202
  00000800`);

/** 802.1ad S-tag 10, 802.1Q C-tag 20, IPv4 with 4 option bytes (NOP NOP NOP END), TCP ACK 1 -> 2. */
export const tcp4QinqOptions = hex(`
  525400000002 525400000001 88a8 000a 8100 0014 0800
  4600 002c 0000 0000 40 06 f3c7 c0000201 c0000202 01010100
  0001 0002 00000003 00000004 50 10 ffff 2bc7 0000`);

/** IPv6 UDP 1 -> 2 "frag" behind an atomic fragment header (offset 0, M 0, id 99). */
export const udp6AtomicFragment = hex(`
  525400000002 525400000001 86dd
  6000 0000 0014 2c 40 20010db8000000000000000000000001 20010db8000000000000000000000002
  11 00 0000 00000063
  0001 0002 000c dc84 66726167`);

export const allFixtures = {
  tcp4,
  tcp4Syn,
  tcp6Vlan,
  udp4Padded,
  udp6,
  icmp4Echo,
  icmp6EchoExt,
  arpRequest,
  gre4,
  tcp4QinqOptions,
  udp6AtomicFragment,
};
