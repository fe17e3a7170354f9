import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { FramedSocket } from '../../proxy/ports/framed-socket.js';
import { encodeFrame } from '../../proxy/ports/framed.js';
import { parseSocketAddress } from '../../proxy/ports/socket-address.js';
import { XenNotify } from '../../src/dropin/xen-notify.js';
import { silentLogger } from '../../src/log.js';
import { Peer, portOf, until, withTimeout } from '../ports/support.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function notifyEndpoint(outstanding = () => false) {
  let checkpoints = 0;
  const notify = new XenNotify({
    logger: silentLogger,
    onCheckpoint: () => checkpoints++,
    isOutstanding: outstanding,
  });
  const socket = new FramedSocket({
    name: 'notify-dev',
    address: parseSocketAddress('--notify-dev', 'listen:127.0.0.1:0'),
    vnetHdr: false,
    sink: notify,
  });
  notify.attach(socket);
  await socket.start();
  cleanup.push(() => socket.close());
  const connectPeer = async (): Promise<Peer> => {
    const connected = once(socket, 'connect');
    const peer = await Peer.connect({ host: '127.0.0.1', port: portOf(socket.describe()) });
    cleanup.push(() => peer.close());
    await withTimeout(connected, 5000, 'for the notify socket to adopt the peer');
    return peer;
  };
  return { notify, socket, connectPeer, checkpoints: () => checkpoints };
}

const msg = (text: string) => encodeFrame(Buffer.from(text, 'latin1'), false);

describe("Xen's notify protocol (libxl userspace proxy)", () => {
  it('answers INIT, flushes on COLO_CHECKPOINT, and matches exactly in length and bytes', async () => {
    const { notify, connectPeer, checkpoints } = await notifyEndpoint();
    const libxl = await connectPeer();
    await libxl.write(
      Buffer.concat([
        msg('COLO_USERSPACE_PROXY_INIT'),
        msg('COLO_CHECKPOINT'),
        msg('COLO_CHECKPOINT\0'), // a trailing NUL is another message
        msg('colo_checkpoint'),
        msg('COLO_USERSPACE_PROXY_INIT '),
      ]),
    );
    await until(() => notify.counters.unknown === 3, 5000, 'for the three near-misses');
    expect(notify.counters.inits).toBe(1);
    expect(checkpoints()).toBe(1);
    await libxl.sink.waitFor(1);
    expect(libxl.texts()).toEqual(['COLO_COMPARE_GET_XEN_INIT']);
  });

  it('sends DO_CHECKPOINT as one whole frame per write, and never a vnet field', async () => {
    const { notify, connectPeer } = await notifyEndpoint();
    const libxl = await connectPeer();
    const chunks: Buffer[] = [];
    libxl.socket.on('data', (c: Buffer) => chunks.push(c));
    notify.requestCheckpoint();
    await libxl.sink.waitFor(1);
    expect(libxl.texts()).toEqual(['DO_CHECKPOINT']);
    // libxl reads the length with one unlooped recv(): the header and the text arrive together.
    expect(Buffer.concat(chunks).equals(msg('DO_CHECKPOINT'))).toBe(true);
    expect(chunks[0].length).toBe(4 + 'DO_CHECKPOINT'.length);
  });

  it('re-sends an outstanding request to a notify peer that (re)connects', async () => {
    let outstanding = false;
    const { notify, connectPeer } = await notifyEndpoint(() => outstanding);
    outstanding = true;
    notify.requestCheckpoint(); // nobody connected yet: nothing can be written
    const libxl = await connectPeer();
    await libxl.sink.waitFor(1);
    expect(libxl.texts()).toEqual(['DO_CHECKPOINT']);
    libxl.close();
    const again = await connectPeer();
    await again.sink.waitFor(1);
    expect(again.texts()).toEqual(['DO_CHECKPOINT']);
    expect(notify.counters.doCheckpointsResent).toBe(2);
  });
});
