import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigErrors } from '../../src/config/errors.js';
import {
  ConfigFileError,
  declareFlags,
  flagAttribute,
  flagsToOverrides,
  loadConfig,
  mergeOver,
  type FlagSpec,
} from '../../src/config/load.js';
import { configError, configFiles } from '../support/config-files.js';

const configs = configFiles('colo-config-');

const schema = z.strictObject({
  name: z.string({ error: 'a name' }),
  port: z.number({ error: 'a port number' }).int({ error: 'a port number' }).default(80),
  nested: z.strictObject({ depth: z.number({ error: 'a depth' }), label: z.string().optional() }).optional(),
});

const specs: FlagSpec[] = [
  { flag: '--name <name>', path: 'name', description: 'the name' },
  { flag: '--port <n>', path: 'port', parse: (raw) => (/^\d+$/.test(raw) ? Number(raw) : raw), description: 'port' },
  { flag: '--nested-depth <n>', path: 'nested.depth', parse: Number, description: 'depth' },
];

describe('config loading', () => {
  it('reads a YAML file and fills defaults', () => {
    const config = loadConfig(schema, { file: configs.write('name: alpha\nnested:\n  depth: 2\n') });
    expect(config).toEqual({ name: 'alpha', port: 80, nested: { depth: 2 } });
  });

  it('flags override file values, field by field, and leave the rest of the file alone', () => {
    const config = loadConfig(schema, {
      file: configs.write('name: alpha\nport: 81\nnested: { depth: 2, label: kept }\n'),
      flags: { port: '9000', nestedDepth: '7', config: 'ignored: the command uses it' },
      flagSpecs: specs,
    });
    expect(config).toEqual({ name: 'alpha', port: 9000, nested: { depth: 7, label: 'kept' } });
  });

  it('works with no file at all, from flags only', () => {
    expect(loadConfig(schema, { flags: { name: 'beta' }, flagSpecs: specs })).toEqual({ name: 'beta', port: 80 });
  });

  it('names the field, what was expected and what it got', () => {
    const err = configError(() => loadConfig(schema, { file: configs.write('name: 42\n') }));
    expect(err.field).toBe('name');
    expect(err.message).toBe('config field "name": expected a name, got 42');
    const nested = configError(() => loadConfig(schema, { file: configs.write('name: x\nnested: { depth: deep }\n') }));
    expect(nested.message).toBe('config field "nested.depth": expected a depth, got "deep"');
  });

  it('a bad flag value is named by the field it lands on', () => {
    const err = configError(() => loadConfig(schema, { flags: { name: 'x', port: 'eighty' }, flagSpecs: specs }));
    expect(err.message).toBe('config field "port": expected a port number, got "eighty"');
  });

  it('unknown fields are errors naming the field and the known ones', () => {
    const top = configError(() => loadConfig(schema, { file: configs.write('name: x\nprot: 80\n') }));
    expect(top.field).toBe('prot');
    expect(top.message).toContain('known fields here: name, port, nested');
    const deep = configError(() =>
      loadConfig(schema, { file: configs.write('name: x\nnested: { depth: 1, colour: red }\n') }),
    );
    expect(deep.field).toBe('nested.colour');
    expect(deep.message).toContain('known fields here: depth, label');
  });

  it('a config with several mistakes reports every one, one line per field', () => {
    const text = 'name: 42\nport: eighty\nprot: 80\ncolour: red\nnested: { depth: deep }\n';
    const err = configError(() => loadConfig(schema, { file: configs.write(text) }));
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).problems.map((p) => p.field).sort()).toEqual([
      'colour',
      'name',
      'nested.depth',
      'port',
      'prot',
    ]);
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(5);
    expect(lines).toContain('config field "name": expected a name, got 42');
    expect(lines).toContain('config field "port": expected a port number, got "eighty"');
  });

  it('a missing file, bad YAML or a non-mapping is a ConfigFileError naming the file', () => {
    const missing = configError(() => loadConfig(schema, { file: join(configs.dir, 'absent.yaml') }));
    expect(missing).toBeInstanceOf(ConfigFileError);
    expect(missing.message).toMatch(/^config file ".*absent\.yaml": cannot be read \(ENOENT/);
    const broken = configError(() => loadConfig(schema, { file: configs.write('name: [unclosed\n') }));
    expect(broken.message).toMatch(/is not valid YAML at line \d/);
    const list = configError(() => loadConfig(schema, { file: configs.write('- a\n- b\n') }));
    expect(list.message).toContain('must be a YAML mapping');
  });

  it('an empty file is an empty config (then the schema names what is missing)', () => {
    const err = configError(() => loadConfig(schema, { file: configs.write('') }));
    expect(err.message).toBe('config field "name": expected a name, got undefined');
  });

  it('maps commander attributes to paths, applying implied fields', () => {
    expect(flagAttribute('--exec-suspend <cmd>')).toBe('execSuspend');
    const overrides = flagsToOverrides(
      [{ flag: '--x-y <v>', path: 'a.b', implies: { 'a.kind': 'k' }, description: '' }],
      { xY: 'v', 'c.d': 1, other: 2 },
    );
    expect(overrides).toEqual({ a: { kind: 'k', b: 'v' }, c: { d: 1 } });
    expect(mergeOver({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: 3 }, d: [2] })).toEqual({ a: { b: 3, c: 2 }, d: [2] });
  });

  it('declares the flags on a commander command so parsed options feed straight in', () => {
    const command = declareFlags(new Command('x').exitOverride(), specs);
    command.parse(['--name', 'gamma', '--port', '8080'], { from: 'user' });
    expect(loadConfig(schema, { flags: command.opts(), flagSpecs: specs })).toEqual({ name: 'gamma', port: 8080 });
  });
});
