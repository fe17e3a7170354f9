import { z } from 'zod';
import { parsePassthroughRule, parsePassthroughRules, type PassthroughRule } from '../../compare/passthrough.js';
import { ConfigError } from './errors.js';

/**
 * Pass-through rules as configuration: the `passthrough` list of a YAML file and the repeatable
 * `--passthrough RULE` flag. The rule syntax is compare/passthrough.ts's (docs/configuration.md).
 */

const RULE_TEXT = 'a pass-through rule such as tcp:22, udp:5353,10.0.0.0/8 or fd00::/8';

/** One rule of the YAML list; an error names the list index (`passthrough.1`), the rule and what was expected. */
const ruleSchema = z.string({ error: RULE_TEXT }).transform((text, ctx) => {
  const parsed = parsePassthroughRule(text);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({
    code: 'custom',
    message: `${parsed.error.expected} in rule ${JSON.stringify(text)} (the term ${JSON.stringify(parsed.error.received)})`,
  });
  return z.NEVER;
});

export const passthroughListSchema = z.array(ruleSchema, { error: `a list of rules, each ${RULE_TEXT}` });

/** commander's accumulator for a repeatable flag: each use appends. */
export function collectRule(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The flag's values as rules; throws ConfigError naming the flag, the rule and what was expected. */
export function passthroughFromFlags(flag: string, values: readonly string[] | undefined): PassthroughRule[] {
  const parsed = parsePassthroughRules(values ?? []);
  if (parsed.ok) return parsed.value;
  const { rule, expected, received } = parsed.error;
  throw new ConfigError(`${flag} ${rule}`, `${expected} (the term ${JSON.stringify(received)})`, rule);
}
