import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, ConfigErrors } from './errors.js';

/**
 * Generic config loading for every command: an optional YAML file, command-line flags merged over it
 * (flags win), one zod schema to validate the result. Every problem becomes a ConfigError naming the field
 * path and what was expected; unknown fields are errors, never ignored.
 */

/** A problem with the file itself (unreadable, not YAML, not a mapping). Still a ConfigError for the CLI. */
export class ConfigFileError extends ConfigError {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super('(file)', problem, file);
    this.message = `config file "${file}": ${problem}`;
    this.name = 'ConfigFileError';
  }
}

/** One command-line flag that overrides one config field. */
export interface FlagSpec {
  /** commander syntax: '--exec-suspend <cmd>' or '--plaintext'. */
  readonly flag: string;
  /** Dotted config path the value lands on, e.g. 'driver.suspend'. */
  readonly path: string;
  readonly description: string;
  /** Turns the raw flag string into the field's value; leave invalid input as is so the schema names it. */
  readonly parse?: (raw: string) => unknown;
  /** Other fields this flag sets, e.g. `{ 'driver.kind': 'exec' }` for the exec hook flags. */
  readonly implies?: Readonly<Record<string, unknown>>;
  /** Earlier spellings ('--heartbeat-timeout'): still accepted, hidden from --help, warned about when used. */
  readonly formerly?: readonly string[];
}

/** commander's attribute name for a flag: '--exec-suspend <cmd>' -> 'execSuspend'. */
export function flagAttribute(flag: string): string {
  const long = flag.split(/[ ,]+/).find((part) => part.startsWith('--'));
  if (long === undefined) throw new Error(`flag "${flag}" has no long form`);
  return long.slice(2).replace(/-([a-z])/g, (_m, letter: string) => letter.toUpperCase());
}

/** Declares every flag on a commander command (values stay strings; the schema validates them). */
export function declareFlags(command: Command, specs: readonly FlagSpec[]): Command {
  for (const spec of specs) {
    command.option(spec.flag, spec.description);
    const argument = spec.flag.split(' ').slice(1).join(' ');
    for (const old of spec.formerly ?? []) {
      command.addOption(new Option(`${old} ${argument}`.trim(), `same as ${longFlag(spec.flag)}`).hideHelp());
    }
  }
  return command;
}

function longFlag(flag: string): string {
  return flag.split(' ')[0];
}

function warnToStderr(message: string): void {
  process.stderr.write(`colo-proxy: ${message}\n`);
}

type Tree = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

export function getPath(tree: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = tree;
  for (const key of path) {
    if (!isPlainObject(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

export function setPath(tree: Tree, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]] = value;
}

/** Deep merge: plain objects merge key by key; anything else in `over` replaces what is in `base`. */
export function mergeOver(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const merged: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = mergeOver(base[key], value);
  return merged;
}

/**
 * Flag values (commander's opts(): attribute names) to a nested override tree. Keys that no spec names
 * belong to the command itself (e.g. `config`) and are left alone; commander already refused unknown flags.
 * Keys containing a dot are taken as config paths directly (embedding code and tests use this).
 */
export function flagsToOverrides(
  specs: readonly FlagSpec[],
  flags: Record<string, unknown>,
  warn: (message: string) => void = warnToStderr,
): Tree {
  const byAttribute = new Map(specs.map((spec) => [flagAttribute(spec.flag), spec]));
  const former = new Map<string, [string, FlagSpec]>();
  for (const spec of specs) for (const old of spec.formerly ?? []) former.set(flagAttribute(old), [old, spec]);
  const overrides: Tree = {};
  for (const [key, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    let spec = byAttribute.get(key);
    const old = former.get(key);
    if (spec === undefined && old !== undefined) {
      spec = old[1];
      warn(`${old[0]} is deprecated: use ${longFlag(spec.flag)}`);
    }
    if (spec === undefined) {
      if (key.includes('.')) setPath(overrides, key, raw);
      continue;
    }
    for (const [path, value] of Object.entries(spec.implies ?? {})) setPath(overrides, path, value);
    setPath(overrides, spec.path, typeof raw === 'string' && spec.parse ? spec.parse(raw) : raw);
  }
  return overrides;
}

/** Reads a YAML file into a plain tree. An empty file is an empty config. */
export function readConfigFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigFileError(file, `cannot be read (${(err as Error).message})`);
  }
  let tree: unknown;
  try {
    tree = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new ConfigFileError(file, `is not valid YAML${where} (${(err as Error).message.split('\n')[0]})`);
  }
  if (tree === null || tree === undefined) return {};
  if (!isPlainObject(tree)) throw new ConfigFileError(file, 'must be a YAML mapping of field: value');
  return tree;
}

/** One zod issue as ConfigErrors (one per unknown key): the dotted field path, what was expected, what came. */
export function issueToConfigErrors(schema: z.ZodType, issue: z.core.$ZodIssue, input: unknown): ConfigError[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(schema, issue.path, input);
    const hint = known.length > 0 ? ` (known fields here: ${known.join(', ')})` : '';
    return issue.keys.map(
      (key) =>
        new ConfigError(
          [...path, key].join('.'),
          `no field of this name: it is unknown${hint}`,
          getPath(input, [...issue.path, key]),
        ),
    );
  }
  const field = path.length > 0 ? path.join('.') : '(root)';
  return [new ConfigError(field, issue.message, getPath(input, issue.path))];
}

/** Every zod issue, at most one per field (the first the schema raised), as one ConfigErrors. */
export function issuesToConfigError(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
): ConfigErrors {
  const byField = new Map<string, ConfigError>();
  for (const issue of issues) {
    for (const error of issueToConfigErrors(schema, issue, input)) {
      if (!byField.has(error.field)) byField.set(error.field, error);
    }
  }
  return new ConfigErrors([...byField.values()]);
}

/** Best effort: the field names the schema allows at `path` (used to make "unknown field" errors useful). */
function knownFields(schema: z.ZodType, path: ReadonlyArray<PropertyKey>, input: unknown): string[] {
  let node = unwrap(schema, getPath(input, []));
  for (let i = 0; i <= path.length; i++) {
    node = unwrap(node, getPath(input, path.slice(0, i)));
    if (node === undefined) return [];
    if (i === path.length) {
      const fields = (node._zod.def as { shape?: Record<string, z.ZodType> }).shape;
      return fields ? Object.keys(fields) : [];
    }
    const shape = (node._zod.def as { shape?: Record<string, z.ZodType> }).shape;
    node = shape?.[String(path[i])];
    if (node === undefined) return [];
  }
  return [];
}

/** Looks through optional/default/pipe wrappers and picks the discriminated-union option the input chose. */
function unwrap(node: z.ZodType | undefined, value: unknown): z.ZodType | undefined {
  for (let guard = 0; node !== undefined && guard < 16; guard++) {
    const def = node._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; options?: z.ZodType[] };
    if (def.innerType) node = def.innerType;
    else if (def.type === 'pipe' && def.in) node = def.in;
    else if (def.type === 'union' && def.options) {
      node = def.options.find((option) => option.safeParse(value).success) ?? pickByDiscriminator(def, value);
    } else return node;
  }
  return node;
}

function pickByDiscriminator(def: { options?: z.ZodType[] }, value: unknown): z.ZodType | undefined {
  const discriminator = (def as { discriminator?: string }).discriminator;
  if (discriminator === undefined || !isPlainObject(value)) return undefined;
  return def.options?.find((option) => {
    const shape = (option._zod.def as { shape?: Record<string, z.ZodType> }).shape;
    return shape?.[discriminator]?.safeParse(value[discriminator]).success === true;
  });
}

export interface LoadOptions {
  /** The YAML file, if any. */
  file?: string;
  /** Flag values as commander gives them (see flagsToOverrides). */
  flags?: Record<string, unknown>;
  flagSpecs?: readonly FlagSpec[];
  /** Runs on the merged tree before validation, e.g. to drop a file section a flag replaced wholesale. */
  prepare?: (file: Tree, overrides: Tree) => Tree;
  /** Where a deprecated flag's warning goes (stderr by default). */
  warn?: (message: string) => void;
}

/**
 * File, then flags over it, then the schema. Throws ConfigFileError for a file it cannot use, else
 * ConfigErrors naming every field the schema refused.
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: LoadOptions = {}): z.output<S> {
  const fromFile = options.file === undefined ? {} : readConfigFile(options.file);
  const overrides = flagsToOverrides(options.flagSpecs ?? [], options.flags ?? {}, options.warn);
  const merged = options.prepare ? options.prepare(fromFile, overrides) : mergeOver(fromFile, overrides);
  const result = schema.safeParse(merged);
  if (!result.success) throw issuesToConfigError(schema, result.error.issues, merged);
  return result.data;
}
