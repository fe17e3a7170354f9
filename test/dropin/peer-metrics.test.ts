import { describe, expect, it } from 'vitest';
import { withTimeout } from '../ports/support.js';
import { loopbackCompare } from './support.js';

const compare = loopbackCompare();

describe('colo-proxy compare: peers, mode and process in /metrics (real loopback sockets)', () => {
  it('each socket is a colo_peer_connected series: 0 until its peer connects, 1 while it is, 0 once it leaves', async () => {
    const s = await compare.start({ metrics: { host: '127.0.0.1', port: 0 } });
    const scrape = async (): Promise<string> => (await fetch(`http://${s.endpoints.metrics}/metrics`)).text();
    const connected = (text: string): Record<string, number> =>
      Object.fromEntries(
        [...text.matchAll(/^colo_peer_connected\{peer="([^"]+)"\} (\d)$/gm)].map((m) => [m[1], +m[2]]),
      );
    /** Scrapes until the peers read as expected (the socket events arrive asynchronously), bounded. */
    const expectPeers = async (expected: Record<string, number>, what: string): Promise<string> => {
      let text = '';
      await withTimeout(
        (async () => {
          for (;;) {
            text = await scrape();
            if (JSON.stringify(connected(text)) === JSON.stringify(expected)) return;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        })(),
        5000,
        what,
      ).catch(() => expect(connected(text), what).toEqual(expected));
      return text;
    };

    const none = { 'primary-in': 0, 'secondary-in': 0, outdev: 0, 'notify-dev': 0 };
    const first = await expectPeers(none, 'no peer yet');
    expect(first).toContain('colo_mode{mode="protected"} 1');
    expect(first).toMatch(/^colo_build_info\{version="[^"]+",node="[^"]+"\} 1$/m);
    expect(first).toMatch(/^process_resident_memory_bytes \d/m);

    const outdev = await compare.peer(s, 'outdev');
    await compare.peer(s, 'notify-dev');
    await expectPeers({ ...none, outdev: 1, 'notify-dev': 1 }, 'outdev and notify-dev connected');

    outdev.close();
    await outdev.closed;
    await expectPeers({ ...none, 'notify-dev': 1 }, 'outdev gone');
  });
});
