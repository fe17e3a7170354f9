import { execFile } from 'node:child_process';
import type { Netns } from './netns.js';

export interface HttpReply {
  status: number;
  body: Buffer;
}

// Runs in a child node inside the namespace: the status code on the first line, then the raw body.
const getScript = `
const http = require('node:http');
const [url, timeoutMs] = process.argv.slice(1);
const req = http.get(url, { agent: false }, (res) => {
  process.stdout.write(res.statusCode + '\\n');
  res.pipe(process.stdout);
});
req.setTimeout(Number(timeoutMs), () => req.destroy(new Error('no reply within ' + timeoutMs + ' ms')));
req.on('error', (err) => {
  process.stderr.write(err.message);
  process.exitCode = 2;
});
`;

/** One HTTP GET made by Node's http client from inside `ns` (bounded by `timeoutMs`). */
export function httpGetInNetns(ns: Netns, url: string, timeoutMs = 30_000): Promise<HttpReply> {
  const args = ['netns', 'exec', ns.name, process.execPath, '-e', getScript, url, String(timeoutMs)];
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      args,
      { encoding: 'buffer', maxBuffer: 64 << 20, timeout: timeoutMs + 5000 },
      (err, stdout, stderr) => {
        if (err)
          return reject(new Error(`GET ${url} in ${ns.name} failed: ${stderr.toString().trim() || err.message}`));
        const newline = stdout.indexOf(0x0a);
        const status = Number(stdout.subarray(0, newline).toString());
        if (newline < 0 || !Number.isInteger(status)) {
          return reject(
            new Error(`GET ${url}: expected a status line first; got ${stdout.subarray(0, 40).toString()}`),
          );
        }
        resolve({ status, body: stdout.subarray(newline + 1) });
      },
    );
  });
}
