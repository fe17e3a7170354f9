import type { IncomingMessage } from 'node:http';
import { parsePassthroughRules, type PassthroughRule } from '../../compare/passthrough.js';

/**
 * The pass-through rules over the metrics server (docs/configuration.md, "Changing the rules at run time"):
 * GET /passthrough lists them with the frames each matched; PUT /passthrough with a JSON list of rule strings
 * replaces them all (an empty list removes them). PUT answers only when the server listens on loopback: a
 * rule switches comparison off for its traffic, so changing one is for whoever can reach the host itself.
 */
export interface PassthroughControl {
  list(): { rule: string; frames: number }[];
  /** Replaces every rule; the engine applies them from its next frame on. */
  replace(rules: readonly PassthroughRule[]): void;
}

export interface ControlAnswer {
  status: number;
  body: unknown;
}

/** A rule list is a few hundred bytes; a body past this is refused rather than buffered. */
const MAX_BODY_BYTES = 64 * 1024;
const LIST_EXPECTED = 'a JSON list of rule strings, e.g. ["tcp:22", "udp:5353,10.0.0.0/8"]';

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}

export async function readPassthroughBody(
  req: IncomingMessage,
  control: PassthroughControl,
  host: string,
): Promise<ControlAnswer> {
  if (req.method === 'GET' || req.method === 'HEAD') return { status: 200, body: { rules: control.list() } };
  if (req.method !== 'PUT') return { status: 405, body: { error: 'method not allowed: GET or PUT' } };
  if (!isLoopbackHost(host)) {
    req.resume();
    return {
      status: 403,
      body: { error: `PUT /passthrough answers only on a loopback address; this server listens on ${host}` },
    };
  }
  const text = await readBody(req);
  if (text === null) return { status: 413, body: { error: `a body of at most ${MAX_BODY_BYTES} bytes` } };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { status: 400, body: { error: { expected: LIST_EXPECTED, received: text.slice(0, 200) } } };
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    return { status: 400, body: { error: { expected: LIST_EXPECTED, received: value } } };
  }
  const parsed = parsePassthroughRules(value);
  if (!parsed.ok) {
    const index = value.indexOf(parsed.error.rule);
    return { status: 400, body: { error: { field: `passthrough.${index}`, ...parsed.error } } };
  }
  control.replace(parsed.value);
  return { status: 200, body: { rules: control.list() } };
}

/** The body as text, or null when it passes MAX_BODY_BYTES (read to its end, so the answer still reaches the client). */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return length > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString('utf8');
}
