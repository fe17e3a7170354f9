// Run inside a network namespace by live.test.ts: argv = sendIface recvIface count mtu.
import type { FramingRejectReason } from '../../proxy/port.js';
import { LivePort } from '../../proxy/ports/live.js';

const [sendIface, recvIface, countText, mtuText] = process.argv.slice(2);
const count = Number(countText);
const received: Buffer[] = [];
const rejects: FramingRejectReason[] = [];
const oversizedWarnings: string[] = [];
let senderCapturedOwn = 0;

const frameFor = (i: number): Buffer => {
  const frame = Buffer.alloc(60 + (i % 40) * 30);
  frame.fill(0xff, 0, 6);
  frame.writeUInt32BE(0x02000000 + i, 6);
  frame.writeUInt16BE(0x88b5, 12); // local experimental EtherType: nothing in the kernel answers it
  frame.writeUInt32BE(i, 14);
  for (let j = 18; j < frame.length; j++) frame[j] = (i + j) & 0xff;
  return frame;
};

const sender = new LivePort({
  name: 'sender',
  iface: sendIface,
  sink: {
    onFrame: (frame) => {
      if (frame.readUInt16BE(12) === 0x88b5) senderCapturedOwn++;
    },
    onReject: () => undefined,
  },
});
const receiver = new LivePort({
  name: 'receiver',
  iface: recvIface,
  mtu: Number(mtuText),
  sink: {
    onFrame: (frame) => {
      if (frame.readUInt16BE(12) === 0x88b5) received.push(frame);
      if (received.length === count) finish();
    },
    onReject: (reason) => rejects.push(reason),
  },
});
receiver.on('oversized', (message: string) => oversizedWarnings.push(message));

const deadline = setTimeout(finish, 5000);
// Give libpcap's ring a moment to be armed on both handles before the burst (not a correctness wait:
// the assertion is on the count, and the deadline bounds the test).
setImmediate(() => {
  for (let i = 0; i < count; i++) sender.send(frameFor(i));
});

function finish(): void {
  clearTimeout(deadline);
  const inOrderAndExact = received.length === count && received.every((f, i) => f.equals(frameFor(i)));
  sender.close();
  receiver.close();
  process.stdout.write(
    JSON.stringify({ received: received.length, inOrderAndExact, senderCapturedOwn, oversizedWarnings, rejects }),
  );
  process.exit(0);
}
