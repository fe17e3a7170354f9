import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import type { CompareFlags } from '../../src/cli/commands/compare.js';
import { ConfigError } from '../../src/config/errors.js';

/** A test file's directory of config files, removed after its tests. */
export interface ConfigFiles {
  readonly dir: string;
  /** Writes `text` to a new file in `dir` and returns its path. */
  write: (text: string) => string;
}

/** Call at the top level of a test file: the directory lives until the file's last test has run. */
export function configFiles(prefix: string): ConfigFiles {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let count = 0;
  return {
    dir,
    write(text) {
      const path = join(dir, `c${count++}.yaml`);
      writeFileSync(path, text);
      return path;
    },
  };
}

/** The ConfigError `run` throws; the test fails when it throws anything else, or nothing. */
export function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** The smallest `colo-proxy run` YAML that loads (lab driver, no I/O at load); a test appends what it is about. */
export const minimalInlineYaml = `interfaces: { client: xcli, primary: xpri, secondary: xsec }
checkpoint:
  endpoint: connect:unix:/run/colo/agent.sock
  plaintext: true
  driver: { kind: lab, control: /run/colo/primary.sock }
`;

/** `colo-proxy compare`'s flags as commander hands them over: the three sockets, every default, then `extra`. */
export function compareFlags(extra: Partial<CompareFlags> = {}): CompareFlags {
  return {
    primaryIn: 'listen:127.0.0.1:9001',
    secondaryIn: 'listen:127.0.0.1:9002',
    outdev: 'listen:127.0.0.1:9003',
    compareTimeout: '3000',
    expiredScanCycle: '1000',
    maxQueueSize: '1024',
    maxHeldFrames: '49152',
    maxHeldBytes: '50331648',
    vnetHdrSupport: false,
    ...extra,
  };
}
