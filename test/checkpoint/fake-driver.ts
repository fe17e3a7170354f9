import type { DriverHook, VmDriver } from '../../src/checkpoint/driver.js';
import { DriverError } from '../../src/checkpoint/driver.js';

/**
 * An in-memory VM: its "state" is a Buffer; suspend/resume flip `running`. Every call is recorded in order,
 * failures and gates (a promise a hook waits on) are injectable per hook.
 */
export class FakeDriver implements VmDriver {
  readonly kind = 'fake';
  running = true;
  readonly calls: DriverHook[] = [];
  readonly loaded: Buffer[] = [];
  fail: Partial<Record<DriverHook, string>> = {};
  gate: Partial<Record<DriverHook, Promise<void>>> = {};
  /** Called as each hook starts, e.g. to break a connection at exactly that moment. */
  onCall: ((hook: DriverHook) => void) | null = null;

  constructor(public state: Buffer = Buffer.from('initial state')) {}

  async suspend(): Promise<void> {
    await this.enter('suspend');
    this.running = false;
  }

  async save(): Promise<Buffer> {
    await this.enter('save');
    return this.state;
  }

  async load(state: Buffer): Promise<void> {
    await this.enter('load');
    // Copy: a view may share memory the transport reuses.
    this.state = Buffer.from(state);
    this.loaded.push(this.state);
  }

  async resume(): Promise<void> {
    await this.enter('resume');
    this.running = true;
  }

  count(hook: DriverHook): number {
    return this.calls.filter((c) => c === hook).length;
  }

  private async enter(hook: DriverHook): Promise<void> {
    this.calls.push(hook);
    this.onCall?.(hook);
    const gate = this.gate[hook];
    if (gate) await gate;
    const message = this.fail[hook];
    if (message !== undefined) throw new DriverError(hook, message, 1, 'fake stderr');
  }
}

/** A promise with its resolve exposed, for gating a hook until the test says so. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
