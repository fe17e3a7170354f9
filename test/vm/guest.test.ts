import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bootGuest, createTap, ensureGuest, type GuestImage, type GuestVm } from '../support/guest-vm.js';
import { createNetns, deleteNetns, type Netns } from '../support/netns.js';
import { httpGetInNetns } from '../support/netns-http.js';
import { describeWith, hasCommand, isRoot } from '../support/prerequisites.js';

/**
 * The test guest (vm/README.md) booted for real under TCG on a tap in a namespace of its own, and asked over
 * HTTP from the host side of that tap: each URL must answer as the README says.
 */

const nsName = `colo-gv-${process.pid}`;
const tap = 'gtap0';
const hostCidr = '10.77.0.1/24';
const guestAddress = '10.77.0.2';
const guestUrl = `http://${guestAddress}`;
const indexFile = new URL('../../vm/guest/www/index.html', import.meta.url);

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describeWith(
  [isRoot(), hasCommand('qemu-system-x86_64', 'qemu-system-x86'), hasCommand('cpio', 'cpio')],
  'the test guest on a tap',
  () => {
    let ns: Netns | undefined;
    let vm: GuestVm | undefined;
    let image: GuestImage;

    beforeAll(async () => {
      image = await ensureGuest();
      ns = await createNetns(nsName);
      await createTap(ns, tap, hostCidr);
      vm = await bootGuest(image, { netns: ns, tap, mac: '52:54:00:c0:10:02', ip: `${guestAddress}/24` });
    }, 600_000);

    afterAll(async () => {
      await vm?.stop();
      await deleteNetns(nsName);
    }, 30_000);

    const get = async (path: string): Promise<Buffer> => {
      const reply = await httpGetInNetns(ns!, `${guestUrl}${path}`);
      expect(reply.status, `status of ${path}`).toBe(200);
      return reply.body;
    };

    it('serves index.html byte for byte', async () => {
      expect((await get('/index.html')).equals(await readFile(indexFile))).toBe(true);
    });

    it('stamps no Date on its replies: two replicas answering in different seconds must not differ', async () => {
      for (const path of ['/index.html', '/cgi-bin/last-random']) {
        const head = await ns!.exec('curl', '-si', '--max-time', '20', `${guestUrl}${path}`);
        expect(head.split('\r\n\r\n')[0]).toMatch(/^HTTP\/1\.[01] 200/);
        expect(head.split('\r\n\r\n')[0]).not.toMatch(/^date:/im);
      }
    });

    it("serves big.bin with the manifest's SHA-256", async () => {
      const body = await get('/big.bin');
      expect(body.length).toBe(image.manifest.www['/big.bin'].bytes);
      expect(sha256(body)).toBe(image.manifest.bigBinSha256);
    });

    it('answers /cgi-bin/random differently each time', async () => {
      const first = (await get('/cgi-bin/random')).toString();
      const second = (await get('/cgi-bin/random')).toString();
      expect(first).toMatch(/^[0-9a-f]{32}\n$/);
      expect(second).toMatch(/^[0-9a-f]{32}\n$/);
      expect(second).not.toBe(first);
    });

    it('counts 1, 2, 3 on /cgi-bin/counter', async () => {
      const values: string[] = [];
      for (let i = 0; i < 3; i++) values.push((await get('/cgi-bin/counter')).toString());
      expect(values).toEqual(['1\n', '2\n', '3\n']);
    });
  },
);
