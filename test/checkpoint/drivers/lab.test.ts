import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LabDriver } from '../../../src/checkpoint/drivers/lab.js';
import { GuestControlServer } from '../../../src/lab/guest-control.js';
import { LabGuest } from '../../../src/lab/guest.js';
import { LineClient } from '../../lab/line-client.js';
import { driverError } from '../../support/driver-error.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-lab-driver-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let sockets = 0;
async function startVm(nondeterministic = false) {
  const guest = new LabGuest({ nondeterministic });
  const control = new GuestControlServer(guest);
  const { port } = await guest.listen('127.0.0.1', 0);
  const path = join(dir, `guest-${sockets++}.sock`);
  const address = await control.listen({ kind: 'unix', path });
  const driver = new LabDriver(address, { suspendMs: 2000, saveMs: 2000, loadMs: 2000, resumeMs: 2000 });
  cleanups.push(
    () => driver.close(),
    () => control.close(),
    () => guest.close(),
  );
  return { guest, control, port, driver, path };
}

async function openClient(port: number): Promise<LineClient> {
  const client = await LineClient.open(port);
  cleanups.push(() => client.close());
  return client;
}

/** A control server that reads requests and never answers: a hung VM monitor. */
async function silentServer(): Promise<{ server: Server; path: string; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer((socket) => accepted.push(socket));
  const path = join(dir, `silent-${sockets++}.sock`);
  server.listen(path);
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const socket of accepted) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, path, accepted };
}

describe('lab driver', () => {
  it('runs a checkpoint end to end: suspend and save the primary, load and resume the secondary', async () => {
    const primary = await startVm();
    const secondary = await startVm();
    const client = await openClient(primary.port);
    client.send('SET user alice\nINCR visits\nINCR visits\n');
    await client.lines(3);

    await primary.driver.suspend();
    await secondary.driver.suspend();
    expect(primary.guest.suspended && secondary.guest.suspended).toBe(true);
    const state = await primary.driver.save();
    await secondary.driver.load(state);
    await secondary.driver.resume();
    await primary.driver.resume();
    expect(primary.guest.suspended || secondary.guest.suspended).toBe(false);

    const script = 'GET user\nINCR visits\nGET nothing\n';
    const p = await openClient(primary.port);
    const s = await openClient(secondary.port);
    p.send(script);
    s.send(script);
    expect(await s.lines(3)).toEqual(['alice', '3', 'NIL']);
    expect(await p.lines(3)).toEqual(await s.lines(3));
  });

  it('holds a client request while the driver has the guest suspended', async () => {
    const vm = await startVm();
    await vm.driver.suspend();
    const client = await openClient(vm.port);
    const held = once(vm.guest, 'held');
    client.send('PING\n');
    await held;
    await vm.driver.save(); // a full control round trip while the request waits
    expect(client.length).toBe(0);
    await vm.driver.resume();
    expect(await client.lines(1)).toEqual(['PONG']);
  });

  it('a state the guest refuses fails load with a DriverError naming the hook and the reason', async () => {
    const vm = await startVm();
    const err = await driverError(vm.driver.load(Buffer.from('garbage')));
    expect(err.hook).toBe('load');
    expect(err.message).toContain('not-json');
    expect(err.timedOut).toBe(false);
    // The connection stays usable after a refusal.
    await vm.driver.resume();
  });

  it('a guest that does not answer times the call out, then the driver reconnects for the next call', async () => {
    const silent = await silentServer();
    const driver = new LabDriver(silent.path, { suspendMs: 150, resumeMs: 150 });
    cleanups.push(() => driver.close());
    const err = await driverError(driver.suspend());
    expect(err.hook).toBe('suspend');
    expect(err.timedOut).toBe(true);
    expect(err.message).toContain('timed out after 150 ms');
    await driverError(driver.resume());
    expect(silent.accepted.length).toBe(2);
    expect(driver.stats).toEqual({ calls: 2, failures: 2, timeouts: 2 });
  });

  it('a guest that is not there fails the call at once, naming the hook', async () => {
    const driver = new LabDriver(join(dir, 'nobody.sock'));
    const err = await driverError(driver.save());
    expect(err.hook).toBe('save');
    expect(err.message).toContain('cannot reach the guest');
  });

  it('a guest that dies mid-call fails the call instead of hanging', async () => {
    const silent = await silentServer();
    const driver = new LabDriver(silent.path, { saveMs: 5000 });
    cleanups.push(() => driver.close());
    const pending = driver.save();
    const deadline = Date.now() + 2000;
    while (silent.accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    silent.accepted[0].destroy();
    const err = await driverError(pending);
    expect(err.hook).toBe('save');
    expect(err.timedOut).toBe(false);
    expect(err.message).toContain('control connection closed');
  });

  it('speaks to a guest control socket over TCP too', async () => {
    const guest = new LabGuest();
    const control = new GuestControlServer(guest);
    const address = await control.listen({ kind: 'tcp', host: '127.0.0.1', port: 0 });
    expect(address).toMatch(/^tcp:127\.0\.0\.1:\d+$/);
    const driver = new LabDriver(address);
    cleanups.push(
      () => driver.close(),
      () => control.close(),
      () => guest.close(),
    );
    await driver.suspend();
    expect(guest.suspended).toBe(true);
    await driver.resume();
    expect(guest.suspended).toBe(false);
  });

  it('the control server answers malformed input with ERR, counts it, and keeps the guest running', async () => {
    const vm = await startVm();
    const raw = new (await import('node:net')).Socket();
    raw.connect(vm.path);
    await once(raw, 'connect');
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.write('REBOOT now please\n');
    await once(raw, 'close');
    expect(Buffer.concat(chunks).toString()).toMatch(/^ERR \d+\nmalformed control message: bad-header$/);
    expect(vm.control.controlErrors).toBe(1);
    await vm.driver.suspend();
    await vm.driver.resume();
  });
});
