/**
 * The real-VM suite's HTTP client, run inside the client namespace (`ip netns exec NS node --import tsx ...`).
 * argv[2] is a JSON job; stdout gets progress lines and a last line with the result (one JSON object each).
 *   {"kind":"get","host","port","paths":[...]}: one connection per request, in order; each reply's status,
 *     body (when under 4 KiB), SHA-256, local port and arrival time (epoch ms).
 *   {"kind":"load","host","port","path","durationMs","concurrency"}: closed-loop GETs for durationMs; counts.
 *   {"kind":"download","host","port","path","pauseAfter"}: one GET; after pauseAfter bytes it stops reading,
 *     prints {"event":"paused"} and waits for SIGUSR2 before reading on; the result has the SHA-256.
 */
import { createHash } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import type { Reply } from './http-reply.js';

type Job =
  | { kind: 'get'; host: string; port: number; paths: string[]; timeoutMs?: number }
  | { kind: 'load'; host: string; port: number; path: string; durationMs: number; concurrency: number }
  | { kind: 'download'; host: string; port: number; path: string; pauseAfter?: number; timeoutMs?: number };

const job = JSON.parse(process.argv[2]) as Job;
const print = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

function get(host: string, port: number, path: string, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent: false, timeout: timeoutMs }, resolve);
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no reply within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function readAll(res: IncomingMessage, path: string): Promise<Reply> {
  const localPort = res.socket?.localPort ?? 0;
  const hash = createHash('sha256');
  const small: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    if (bytes <= 4096) small.push(chunk);
  }
  return {
    path,
    status: res.statusCode ?? 0,
    body: bytes <= 4096 ? Buffer.concat(small).toString('utf8') : null,
    bytes,
    sha256: hash.digest('hex'),
    localPort,
    time: Date.now(),
  };
}

async function gets(j: Extract<Job, { kind: 'get' }>): Promise<object> {
  const replies: Reply[] = [];
  for (const path of j.paths) {
    const reply = await readAll(await get(j.host, j.port, path, j.timeoutMs ?? 20_000), path);
    replies.push(reply);
    print({ event: 'reply', ...reply });
  }
  return { kind: 'get', replies };
}

async function load(j: Extract<Job, { kind: 'load' }>): Promise<object> {
  const deadline = Date.now() + j.durationMs;
  const started = performance.now();
  let requests = 0;
  let errors = 0;
  const latencies: number[] = [];
  let lastError = '';
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      try {
        const reply = await readAll(await get(j.host, j.port, j.path, 10_000), j.path);
        if (reply.status !== 200) throw new Error(`status ${reply.status}`);
        requests++;
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        lastError = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: j.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number | null =>
    latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    kind: 'load',
    requests,
    errors,
    lastError,
    seconds,
    rps: requests / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
  };
}

async function download(j: Extract<Job, { kind: 'download' }>): Promise<object> {
  const res = await get(j.host, j.port, j.path, j.timeoutMs ?? 60_000);
  const hash = createHash('sha256');
  let bytes = 0;
  let paused = false;
  const localPort = res.socket?.localPort ?? 0;
  await new Promise<void>((resolve, reject) => {
    res.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (!paused && j.pauseAfter !== undefined && bytes >= j.pauseAfter) {
        paused = true;
        res.pause();
        // A paused response whose socket has gone quiet keeps nothing alive: this timer holds the process until
        // the signal comes.
        const alive = setInterval(() => undefined, 1 << 30);
        // `on`, not `once`: a second SIGUSR2 with no listener would end the process.
        process.on('SIGUSR2', () => {
          clearInterval(alive);
          print({ event: 'resumed', bytes });
          res.resume();
        });
        print({ event: 'paused', bytes, localPort });
      }
    });
    res.on('end', resolve);
    res.on('error', reject);
    res.on('aborted', () => reject(new Error(`download aborted after ${bytes} bytes`)));
  });
  return { kind: 'download', status: res.statusCode, bytes, sha256: hash.digest('hex'), localPort };
}

const run = job.kind === 'get' ? gets(job) : job.kind === 'load' ? load(job) : download(job);
// Exit once the last line is written: stdout is a pipe, and process.exit() does not wait for a pipe's writes.
const finish = (value: object, code: number): void =>
  void process.stdout.write(`${JSON.stringify(value)}\n`, () => process.exit(code));
run.then(
  (result) => finish(result, 0),
  (err: Error) => finish({ error: err.message }, 1),
);
