import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';

/**
 * Real QEMU guests for end-to-end tests (vm/README.md): builds the guest image with vm/build-guest.sh, boots
 * it under TCG on a tap (optionally inside a network namespace) and waits for the guest to announce
 * COLO-GUEST-READY on its serial console.
 */

export const qemuSystem = process.env.COLO_QEMU_SYSTEM ?? 'qemu-system-x86_64';
export const readyMarker = 'COLO-GUEST-READY';
const failedMarker = 'COLO-GUEST-FAILED';
const builderScript = fileURLToPath(new URL('../../vm/build-guest.sh', import.meta.url));

export interface FileDigest {
  bytes: number;
  sha256: string;
}

/** vm/build-guest.sh's manifest.json. */
export interface GuestManifest {
  key: string;
  builtAt: string;
  kernel: { package: string; version: string; release: string };
  busybox: { package: string; version: string };
  modules: string[];
  /** SHA-256 of /big.bin, which the guest writes at boot (also under www). */
  bigBinSha256: string;
  files: { vmlinuz: FileDigest; 'initrd.gz': FileDigest };
  www: { '/index.html': FileDigest; '/big.bin': FileDigest; [url: string]: unknown };
}

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  manifest: GuestManifest;
}

let building: Promise<GuestImage> | undefined;

/** Builds the guest (or finds it in the cache) once per process. */
export function ensureGuest(timeoutMs = 600_000): Promise<GuestImage> {
  building ??= buildGuest(timeoutMs).catch((err: unknown) => {
    building = undefined;
    throw err;
  });
  return building;
}

async function buildGuest(timeoutMs: number): Promise<GuestImage> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('bash', [builderScript], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, out, errOut) => {
      if (!err) return resolve(out);
      const how = err.killed ? `was killed after ${timeoutMs} ms` : `exited with ${err.code ?? err.signal}`;
      reject(new Error(`vm/build-guest.sh ${how}; its stderr:\n${errOut.trim()}`));
    });
  });
  const dir = stdout.trim().split('\n').at(-1) ?? '';
  if (!dir.startsWith('/')) {
    throw new Error(`expected vm/build-guest.sh to print the guest directory last; it printed "${stdout.trim()}"`);
  }
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as GuestManifest;
  return { dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.gz'), manifest };
}

export interface GuestQemuOptions {
  /** The tap the guest's eth0 is attached to (created beforehand, e.g. by createTap). */
  tap: string;
  mac: string;
  /** The guest's address as ADDR/PREFIX (colo.ip=). */
  ip: string;
  /** Default route inside the guest (colo.gw=). */
  gateway?: string;
  memMiB?: number;
  /** QMP server socket; no QMP without it. */
  qmpPath?: string;
  /** The guest's console (ttyS0) goes to this file; discarded without it. */
  serialLog?: string;
  /**
   * Extra kernel parameters. Default `init_on_free=1`: the guest zeroes pages it frees, and a migration
   * sends zero pages as a flag instead of their contents.
   */
  appendExtra?: string[];
  /** Extra QEMU arguments, appended last. */
  extra?: string[];
}

/** QEMU's argv (without the binary) for one guest on one tap. */
export function guestQemuArgs(image: GuestImage, opts: GuestQemuOptions): string[] {
  const append = [
    'console=ttyS0',
    'quiet',
    'panic=-1',
    `colo.ip=${opts.ip}`,
    ...(opts.gateway ? [`colo.gw=${opts.gateway}`] : []),
    ...(opts.appendExtra ?? ['init_on_free=1']),
  ];
  return [
    ...['-M', 'pc', '-accel', 'tcg', '-m', String(opts.memMiB ?? 128), '-smp', '1'],
    ...['-nographic', '-nodefaults'],
    ...['-serial', opts.serialLog ? `file:${opts.serialLog}` : 'null'],
    ...['-kernel', image.kernel, '-initrd', image.initrd, '-append', append.join(' ')],
    // No vnet headers: QEMU would otherwise turn the tap's offloads on for the guest, and the proxy compares
    // finished, MTU-sized frames only.
    ...['-netdev', `tap,id=n0,ifname=${opts.tap},script=no,downscript=no,vnet_hdr=off`],
    ...['-device', `virtio-net-pci,netdev=n0,mac=${opts.mac}`],
    ...(opts.qmpPath ? ['-qmp', `unix:${opts.qmpPath},server=on,wait=off`] : []),
    ...(opts.extra ?? []),
  ];
}

/** A tap named `name` inside `ns`, up, with `hostCidr` on the host side when given. */
export async function createTap(ns: Netns, name: string, hostCidr?: string): Promise<void> {
  await ns.exec('ip', 'tuntap', 'add', name, 'mode', 'tap');
  await ns.exec('ip', 'link', 'set', name, 'up');
  if (hostCidr) await ns.exec('ip', 'addr', 'add', hostCidr, 'dev', name);
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BootOptions extends GuestQemuOptions {
  /** Run QEMU inside this namespace (its tap lives there). */
  netns?: Netns;
  /** Bound on the wait for COLO-GUEST-READY. TCG boots take seconds idle, tens of seconds on a busy host. */
  readyTimeoutMs?: number;
}

export interface GuestVm {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly serialLog: string;
  readonly qmpPath: string;
  /** Resolves when QEMU exits, however it ends. */
  readonly exited: Promise<ExitStatus>;
  /** Signals QEMU's whole process group. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if QEMU is still there after `graceMs`; removes the temporary directory. */
  stop(graceMs?: number): Promise<ExitStatus>;
  /** The last `chars` of the serial console, for error messages. */
  serialTail(chars?: number): Promise<string>;
  /** The last of what QEMU wrote on stderr. */
  stderr(): string;
}

const pollMs = 50;
const keptStderrChars = 16_384;

/** Starts QEMU in its own process group and resolves once the guest prints COLO-GUEST-READY. */
export async function bootGuest(image: GuestImage, opts: BootOptions): Promise<GuestVm> {
  const runDir = await mkdtemp(join(tmpdir(), 'colo-guest-'));
  const serialLog = opts.serialLog ?? join(runDir, 'serial.log');
  const qmpPath = opts.qmpPath ?? join(runDir, 'qmp.sock');
  const args = guestQemuArgs(image, { ...opts, serialLog, qmpPath });
  const spawnOptions = { detached: true, stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'] };
  const child = opts.netns ? opts.netns.spawn(qemuSystem, args, spawnOptions) : spawn(qemuSystem, args, spawnOptions);

  let stderrText = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderrText = (stderrText + chunk).slice(-keptStderrChars);
  });
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.on('exit', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
    child.on('error', (err) => {
      stderrText += `\nspawn failed: ${err.message}`;
      status = { code: null, signal: null };
      resolve(status);
    });
  });

  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (child.pid === undefined || status) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  const serialTail = async (chars = 2000): Promise<string> => {
    const text = await readFile(serialLog, 'utf8').catch(() => '');
    return text.slice(-chars);
  };
  const stop = async (graceMs = 5000): Promise<ExitStatus> => {
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    const result = await exited;
    clearTimeout(timer);
    await rm(runDir, { recursive: true, force: true });
    return result;
  };
  const vm: GuestVm = {
    child,
    pid: child.pid ?? -1,
    serialLog,
    qmpPath,
    exited,
    kill,
    stop,
    serialTail,
    stderr: () => stderrText,
  };

  try {
    await waitForReady(vm, () => status, opts.readyTimeoutMs ?? 120_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return vm;
}

/** Re-reads the serial log every 50 ms until the marker shows, QEMU exits, or the bound passes. */
async function waitForReady(vm: GuestVm, exitStatus: () => ExitStatus | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(vm.serialLog, 'utf8').catch(() => '');
    if (text.includes(readyMarker)) return;
    const failedAt = text.indexOf(failedMarker);
    if (failedAt >= 0) {
      throw new Error(`expected ${readyMarker} from the guest; it reported: ${text.slice(failedAt).split('\n')[0]}`);
    }
    const status = exitStatus();
    if (status) {
      throw new Error(
        `expected ${readyMarker} from the guest; QEMU exited (${status.code ?? status.signal}) first.\n` +
          `QEMU stderr: ${vm.stderr().trim()}\nserial: ${await vm.serialTail()}`,
      );
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `expected ${readyMarker} from the guest within ${timeoutMs} ms; serial console so far:\n` +
          `${await vm.serialTail()}\nQEMU stderr: ${vm.stderr().trim()}`,
      );
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, pollMs)), vm.exited]);
  }
}
