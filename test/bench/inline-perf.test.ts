import { describe, expect, it } from 'vitest';
import { PerfSampleCounter } from '../../bench/inline-perf.js';

/** One sample of `perf script -F pid,ip,sym,dso`: a header, then the stack from the instruction hit. */
function sample(frames: [symbol: string, dso: string][]): string[] {
  return [
    ' 4242 ',
    ...frames.map(([symbol, dso], i) => `\t    ${(0xffff0000 + i).toString(16)} ${symbol} (${dso})`),
    '',
  ];
}

const KERNEL = '[kernel.kallsyms]';

describe('bench:inline perf split', () => {
  it('splits samples into kernel and user libraries and counts each kernel function on the stack once', () => {
    const counter = new PerfSampleCounter();
    const lines = [
      // A delivery inside sendmmsg, through the packet-ring room check.
      ...sample([
        ['packet_lookup_frame.isra.0', KERNEL],
        ['__packet_rcv_has_room', KERNEL],
        ['tpacket_rcv', KERNEL],
        ['net_rx_action', KERNEL],
        ['__sys_sendmmsg', KERNEL],
        ['__sendmmsg', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
      ]),
      // ip_rcv_core is not ip_rcv: only the exact name counts.
      ...sample([
        ['ip_rcv_core', KERNEL],
        ['__sys_sendmmsg', KERNEL],
      ]),
      ...sample([['[unknown]', '/tmp/perf-4242.map']]),
      ...sample([['__memmove_avx512_unaligned_erms', '/usr/lib/x86_64-linux-gnu/libc.so.6']]),
    ];
    for (const line of lines) counter.line(line);
    const split = counter.split();
    expect(split.samples).toBe(4);
    expect(split.kernelPct).toBe(50);
    expect(split.kernelParts).toEqual({
      sendmmsg: 50,
      deliveries: 25,
      ringWrites: 25,
      ringRoomCheck: 25,
      ipDrop: 0,
      epollWait: 0,
    });
    // A user-space sample is classed by the instruction it hit, not by what is below it on the stack.
    expect(split.user).toEqual({ jit: 25, libc: 25 });
  });

  it('counts a last sample that has no blank line after it, and nothing from an empty input', () => {
    const counter = new PerfSampleCounter();
    for (const line of sample([['tpacket_rcv', KERNEL]]).slice(0, -1)) counter.line(line);
    expect(counter.split()).toMatchObject({ samples: 1, kernelPct: 100, kernelParts: { ringWrites: 100 } });
    expect(new PerfSampleCounter().split()).toMatchObject({ samples: 0, kernelPct: 0, user: {} });
  });
});
