import { EventEmitter } from 'node:events';
import { MemoryPort, type FrameSink } from '../../proxy/port.js';
import type { AppDependencies, AppEvent, PortLike } from '../../src/inline/app.js';
import { withTimeout } from '../checkpoint/harness.js';

/** A memory port with the live ports' events and counters, so `run`'s app can be built on it. */
export class TestPort extends EventEmitter implements PortLike {
  readonly memory = new MemoryPort();
  readonly counters: PortLike['counters'] = {
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    truncated: 0,
    oversized: 0,
    sendErrors: 0,
  };
  constructor(readonly sink: FrameSink) {
    super();
  }
  send(frame: Buffer, start?: number): boolean {
    return this.memory.send(frame, start);
  }
  close(): void {
    this.memory.close();
  }
}

/**
 * What startInlineApp needs to run on memory ports: `deps` opens a TestPort per interface (kept in `ports` by
 * role) and records the app's events, which `waitFor` waits on.
 */
export class MemoryApp {
  readonly ports = new Map<string, TestPort>();
  readonly events: AppEvent[] = [];
  private readonly waiters: Array<() => void> = [];
  readonly deps: AppDependencies = {
    openPort: (options) => {
      const port = new TestPort(options.sink);
      this.ports.set(options.name, port);
      return port;
    },
    checkOffloads: async () => {},
    onEvent: (event) => {
      this.events.push(event);
      for (const wake of this.waiters.splice(0)) wake();
    },
  };

  /** The port opened for `role` (client, primary, secondary); throws when the app has not opened it. */
  port(role: string): TestPort {
    const port = this.ports.get(role);
    if (port === undefined) throw new Error(`no ${role} port opened`);
    return port;
  }

  /** The first event (since the start) that matches; rejects after timeoutMs. */
  waitFor(match: (e: AppEvent) => boolean, what: string, timeoutMs = 10_000): Promise<AppEvent> {
    return withTimeout(
      new Promise<AppEvent>((resolve) => {
        const check = (): void => {
          const found = this.events.find(match);
          if (found) resolve(found);
          else this.waiters.push(check);
        };
        check();
      }),
      timeoutMs,
      what,
    );
  }
}
