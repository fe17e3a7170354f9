import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/**
 * A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3: commands in, fd 4: replies
 * and events out, each message JSON ended by a NUL byte). No WebSocket and no npm browser driver needed.
 */

export const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
];

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
  sessionId?: string;
}

export class Chromium {
  readonly events: CdpEvent[] = [];
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  private readonly listeners = new Set<(e: CdpEvent) => void>();
  private buffered = '';
  private exited: Error | null = null;
  stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const input = child.stdio[3] as Writable;
    const output = child.stdio[4] as Readable;
    input.on('error', () => {});
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => this.onData(chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-20_000);
    });
    child.on('exit', (code, signal) => {
      this.exited = new Error(`chromium exited (code ${code}, signal ${signal}): ${this.stderr.slice(-2000)}`);
      for (const w of this.waiting.values()) w.reject(this.exited);
      this.waiting.clear();
    });
  }

  static async launch(executable = '/usr/bin/chromium'): Promise<Chromium> {
    const profile = await mkdtemp(join(tmpdir(), 'colo-chromium-'));
    const child = spawn(executable, [...chromiumFlags, `--user-data-dir=${profile}`, '--remote-debugging-pipe'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    return new Chromium(child, profile);
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\0')) >= 0) {
      const message = JSON.parse(this.buffered.slice(0, end)) as Message;
      this.buffered = this.buffered.slice(end + 1);
      if (message.id !== undefined) {
        const w = this.waiting.get(message.id);
        this.waiting.delete(message.id);
        if (message.error) w?.reject(new Error(`CDP error: ${message.error.message}`));
        else w?.resolve(message.result ?? {});
      } else if (message.method !== undefined) {
        const event: CdpEvent = { method: message.method, params: message.params ?? {}, sessionId: message.sessionId };
        this.events.push(event);
        for (const l of this.listeners) l(event);
      }
    }
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    const message: Message = { id, method, params, ...(sessionId ? { sessionId } : {}) };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      (this.child.stdio[3] as Writable).write(JSON.stringify(message) + '\0');
    });
  }

  /** Resolves with the first event (past or future) matching, or rejects after timeoutMs. */
  waitFor(predicate: (e: CdpEvent) => boolean, timeoutMs: number, what: string): Promise<CdpEvent> {
    const seen = this.events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const listener = (e: CdpEvent): void => {
        if (!predicate(e)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(e);
      };
      this.listeners.add(listener);
    });
  }

  /** Opens a page target and returns its session id, with Runtime, Log and Page events enabled. */
  async newPage(width: number, height: number): Promise<string> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as {
      sessionId: string;
    };
    await this.send('Runtime.enable', {}, sessionId);
    await this.send('Log.enable', {}, sessionId);
    await this.send('Page.enable', {}, sessionId);
    await this.send(
      'Emulation.setDeviceMetricsOverride',
      { width, height, deviceScaleFactor: 1, mobile: false },
      sessionId,
    );
    return sessionId;
  }

  async close(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      await this.send('Browser.close').catch(() => {});
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.profile, { recursive: true, force: true });
  }
}
