/**
 * The end-to-end tests' client, run inside the client namespace. argv[2] is a JSON job; stdout gets
 * progress lines and a last line with the result (one JSON object each).
 *   {"kind":"requests","host","port","connections":[["SET a 1","GET a"],...]}: one TCP connection per list,
 *     one request line at a time, each reply line recorded with its arrival time (epoch ms).
 *   {"kind":"download","host","port","bytes","progressEvery"}: DOWNLOAD n on one connection; checks every
 *     byte against the lab guest's pattern and records when each chunk arrived.
 */
import { connect, type Socket } from 'node:net';
import { downloadPattern } from '../../src/lab/guest.js';

type Job =
  | { kind: 'requests'; host: string; port: number; connections: string[][]; timeoutMs?: number }
  | { kind: 'download'; host: string; port: number; bytes: number; progressEvery?: number; timeoutMs?: number };

const job = JSON.parse(process.argv[2]) as Job;
const print = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function requests(j: Extract<Job, { kind: 'requests' }>): Promise<object> {
  const replies: { connection: number; localPort: number; request: string; reply: string; time: number }[] = [];
  for (let c = 0; c < j.connections.length; c++) {
    const socket = await open(j.host, j.port);
    let buffered = '';
    const lines: string[] = [];
    let wake: (() => void) | null = null;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        lines.push(buffered.slice(0, newline).replace(/\r$/, ''));
        buffered = buffered.slice(newline + 1);
      }
      wake?.();
    });
    for (const request of j.connections[c]) {
      socket.write(`${request}\n`);
      while (lines.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      replies.push({
        connection: c,
        localPort: socket.localPort ?? 0,
        request,
        reply: lines.shift()!,
        time: Date.now(),
      });
    }
    socket.end('QUIT\n');
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 2000).unref();
    });
  }
  return { kind: 'requests', replies };
}

async function download(j: Extract<Job, { kind: 'download' }>): Promise<object> {
  const socket = await open(j.host, j.port);
  const started = Date.now();
  socket.write(`DOWNLOAD ${j.bytes}\n`);
  let received = 0;
  let firstMismatch: number | null = null;
  let nextProgress = j.progressEvery ?? Infinity;
  const chunks: [number, number][] = [];
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      if (firstMismatch === null) {
        const expected = downloadPattern(received, Math.min(chunk.length, Math.max(0, j.bytes - received)));
        if (chunk.length > expected.length) firstMismatch = received + expected.length;
        else if (!chunk.equals(expected)) {
          let i = 0;
          while (chunk[i] === expected[i]) i++;
          firstMismatch = received + i;
        }
      }
      received += chunk.length;
      chunks.push([Date.now(), chunk.length]);
      if (received >= nextProgress) {
        print({ progress: received });
        nextProgress += j.progressEvery!;
      }
      if (received >= j.bytes) resolve();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  socket.destroy();
  return { kind: 'download', bytes: received, expected: j.bytes, firstMismatch, started, ended: Date.now(), chunks };
}

const timeoutMs = job.timeoutMs ?? 60_000;
setTimeout(() => {
  print({ error: `client timed out after ${timeoutMs} ms` });
  process.exit(2);
}, timeoutMs).unref();
try {
  print(job.kind === 'requests' ? await requests(job) : await download(job));
} catch (err) {
  print({ error: (err as Error).message });
  process.exitCode = 1;
}
