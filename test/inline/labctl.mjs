// Sends one lab guest control request (src/lab/control-protocol.ts) and writes the OK body to stdout;
// exits 1 on ERR. Plain JavaScript so an exec driver hook starts in tens of milliseconds (no tsx).
// Usage: node labctl.mjs SOCKET VERB [BODY|-]   ("-" reads the body from stdin, e.g. LOAD)
import { connect } from 'node:net';

const [socketPath, verb, bodyArg] = process.argv.slice(2);
const chunks = [];
if (bodyArg === '-') for await (const chunk of process.stdin) chunks.push(chunk);
const body = bodyArg === '-' ? Buffer.concat(chunks) : Buffer.from(bodyArg ?? '', 'utf8');
const socket = connect(socketPath.replace(/^unix:/, ''));
socket.write(`${verb} ${body.length}\n`);
socket.write(body);
let received = Buffer.alloc(0);
socket.on('data', (chunk) => {
  received = Buffer.concat([received, chunk]);
  const newline = received.indexOf(10);
  if (newline < 0) return;
  const [replyVerb, length] = received.subarray(0, newline).toString('latin1').split(' ');
  const replyBody = received.subarray(newline + 1);
  if (replyBody.length < Number(length)) return;
  process.stdout.write(replyBody.subarray(0, Number(length)));
  socket.end();
  process.exitCode = replyVerb === 'OK' ? 0 : 1;
});
socket.on('error', (err) => {
  process.stderr.write(`labctl: ${err.message}\n`);
  process.exitCode = 1;
});
