import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { QmpClient } from '../../src/checkpoint/qmp.js';
import { type GuestImage, guestQemuArgs } from './guest-vm.js';
import { labCli, type LabProcess, ProcessLab, repoRoot } from './lab-process.js';
import { link, namespaceSet, type Netns } from './netns.js';

/**
 * The real-VM lab: stock QEMU guests (TCG) protected by `colo-proxy run` with the qemu driver.
 *
 *   client ns            proxy ns (the primary's host)               secondary ns (the secondary's host)
 *   eth0 ---- veth ---- xcli   [colo-proxy run]   xsec ---- veth ---- up0 --+-- br0 --+-- tapS0 (QEMU)
 *                              tapP (primary QEMU)                                    +-- tapS1 (standby QEMU)
 *
 * The secondary's taps sit on a bridge with the proxy's secondary port, as on a real host: the driver starts
 * each new secondary QEMU on whichever tap is free, and the bridge learns where the guest's MAC went from the
 * new QEMU's announcement. Every tap has its offloads off and QEMU runs without vnet headers, so every frame on
 * the wire is a finished, MTU-sized frame.
 */

const clientScript = join(repoRoot, 'test/vm/http-client.ts');
export const qemuBinary = process.env.COLO_QEMU ?? 'qemu-system-x86_64';

export interface VmTopology {
  tag: string;
  client: Netns;
  proxy: Netns;
  secondary: Netns;
  clientIp: string;
  vmIp: string;
  clientMac: string;
  vmMac: string;
  primaryTap: string;
  secondaryTaps: [string, string];
  proxyIfaces: { client: string; primary: string; secondary: string };
  destroy(): Promise<void>;
}

async function offloadsOff(ns: Netns, iface: string): Promise<void> {
  await ns.exec('ethtool', '-K', iface, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
}

export async function createVmTopology(subnet: number): Promise<VmTopology> {
  const tag = `cvm${process.pid % 100000}s${subnet}`;
  const names = [`${tag}-c`, `${tag}-x`, `${tag}-s`];
  const { make, destroy } = namespaceSet();
  try {
    const [client, proxy, secondary] = [await make(names[0]), await make(names[1]), await make(names[2])];
    const clientIp = `10.${subnet}.0.1`;
    const vmIp = `10.${subnet}.0.2`;
    const clientMac = '02:c0:10:00:00:01';
    const vmMac = '52:54:00:c0:10:02';
    const primaryTap = 'tapP';
    const secondaryTaps: [string, string] = ['tapS0', 'tapS1'];
    await link({ ns: client, ifname: 'eth0' }, { ns: proxy, ifname: 'xcli' }, { mac: [clientMac] });
    await link({ ns: proxy, ifname: 'xsec' }, { ns: secondary, ifname: 'up0' });
    await client.exec('ip', 'addr', 'add', `${clientIp}/24`, 'dev', 'eth0');
    await client.exec('ip', 'neigh', 'replace', vmIp, 'lladdr', vmMac, 'dev', 'eth0', 'nud', 'permanent');
    await proxy.exec('ip', 'tuntap', 'add', primaryTap, 'mode', 'tap');
    await offloadsOff(proxy, primaryTap);
    await proxy.exec('ip', 'link', 'set', primaryTap, 'up');
    await secondary.exec('ip', 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
    await secondary.exec('ip', 'link', 'set', 'up0', 'master', 'br0');
    for (const tap of secondaryTaps) {
      await secondary.exec('ip', 'tuntap', 'add', tap, 'mode', 'tap');
      await offloadsOff(secondary, tap);
      await secondary.exec('ip', 'link', 'set', tap, 'master', 'br0');
      await secondary.exec('ip', 'link', 'set', tap, 'up');
    }
    await secondary.exec('ip', 'link', 'set', 'br0', 'up');
    return {
      tag,
      client,
      proxy,
      secondary,
      clientIp,
      vmIp,
      clientMac,
      vmMac,
      primaryTap,
      secondaryTaps,
      proxyIfaces: { client: 'xcli', primary: primaryTap, secondary: 'xsec' },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

export interface VmLabOptions {
  /** QEMU to QEMU pre-copy into a standby secondary (needs both taps); otherwise the state crosses the control channel. */
  precopy?: boolean;
  /** The secondary's taps: one (each load replaces the QEMU on it) or both (a standby starts on the free one). */
  taps?: 1 | 2;
  checkpointTimerMs?: number;
  compareTimeoutMs?: number;
  memMiB?: number;
  primaryHealth?: boolean;
}

/** A QMP event as the test's own monitor saw it: name and QEMU's wall-clock timestamp (epoch ms). */
export interface QmpEventRecord {
  name: string;
  time: number;
}

export class VmLab extends ProcessLab<VmTopology> {
  primary!: LabProcess;
  agent!: LabProcess;
  /** The test's own QMP monitor on the primary (QEMU serves one client per monitor socket: the driver and the health check have the others). */
  monitor: QmpClient | null = null;
  readonly primaryEvents: QmpEventRecord[] = [];
  /** ram.transferred of the primary's last migration, read at each RESUME. */
  readonly migrationBytes: number[] = [];

  constructor(
    topo: VmTopology,
    readonly image: GuestImage,
    readonly options: VmLabOptions = {},
  ) {
    super(mkdtempSync(join(tmpdir(), 'colo-vm-lab-')), topo);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** The QEMU command line both VMs share; `{tap}` is filled in by the secondary's driver. */
  qemuArgs(tap: string, serialLog: string): string[] {
    return guestQemuArgs(this.image, {
      tap,
      mac: this.topo.vmMac,
      ip: `${this.topo.vmIp}/24`,
      memMiB: this.options.memMiB ?? 128,
      serialLog,
      extra: [],
    });
  }

  /** Boots the primary guest and waits until its httpd serves (the guest prints a ready line on its console). */
  async bootPrimary(): Promise<void> {
    const serial = this.path('primary-serial.log');
    const args = [
      ...this.qemuArgs(this.topo.primaryTap, serial),
      '-qmp',
      `unix:${this.path('primary.qmp')},server=on,wait=off`,
      '-qmp',
      `unix:${this.path('monitor.qmp')},server=on,wait=off`,
      '-qmp',
      `unix:${this.path('health.qmp')},server=on,wait=off`,
    ];
    this.primary = this.spawn('primary-qemu', this.topo.proxy, qemuBinary, args);
    await waitForFile(serial, 'COLO-GUEST-READY', 60_000, () => this.primary.running);
    const monitor = await QmpClient.connect(this.path('monitor.qmp'), { timeoutMs: 10_000 });
    monitor.on('event', ({ event, timestamp }) => {
      this.primaryEvents.push({ name: event, time: timestamp.seconds * 1000 + timestamp.microseconds / 1000 });
      // The migration that the checkpoint ran is the last one QEMU reports on: its RAM bytes are the state's size.
      if (event === 'RESUME')
        monitor.execute<{ ram?: { transferred?: number } }>('query-migrate').then(
          (info) => {
            if (info.ram?.transferred !== undefined) this.migrationBytes.push(info.ram.transferred);
          },
          () => undefined,
        );
    });
    this.monitor = monitor;
  }

  async startAgent(): Promise<LabProcess> {
    const taps = this.options.taps ?? (this.options.precopy ? 2 : 1);
    const config = {
      endpoint: `listen:unix:${this.path('agent.sock')}`,
      plaintext: true,
      timeouts: { waitMs: 10_000, heartbeatLossMs: 10_000 },
      driver: {
        kind: 'qemu',
        command: [qemuBinary, ...this.qemuArgs('{tap}', this.path('secondary-serial.log'))],
        taps: this.topo.secondaryTaps.slice(0, taps),
        workDir: this.path('secondary'),
        ...(this.options.precopy ? { incoming: `unix:${this.path('incoming.sock')}` } : {}),
      },
    };
    const file = this.path('secondary.yaml');
    writeFileSync(file, stringify(config));
    this.agent = this.spawn('agent', this.topo.secondary, process.execPath, [labCli, 'secondary', '--config', file]);
    await this.agent.waitFor((e) => e.event === 'listening', 20_000, 'the agent to listen');
    return this.agent;
  }

  async startProxy(): Promise<void> {
    const o = this.options;
    const config = {
      interfaces: this.topo.proxyIfaces,
      checkpoint: {
        endpoint: `connect:unix:${this.path('agent.sock')}`,
        plaintext: true,
        checkpointTimerMs: o.checkpointTimerMs ?? 60_000,
        timeouts: { waitMs: 10_000, heartbeatLossMs: 10_000, transferMs: 60_000, loadMs: 60_000 },
        driver: {
          kind: 'qemu',
          qmp: this.path('primary.qmp'),
          ...(o.precopy ? { precopy: { uri: `unix:${this.path('incoming.sock')}` } } : {}),
        },
      },
      // Under TCG a freshly loaded QEMU translates the guest's code anew: its first replies after a checkpoint can
      // trail the primary's by seconds on a loaded two-core host, which a 3 s compare_timeout calls a divergence.
      compare: { compareTimeoutMs: o.compareTimeoutMs ?? 10_000, expiredScanCycleMs: 100, maxQueueSize: 8192 },
      ...(o.primaryHealth
        ? {
            primaryHealth: { kind: 'qemu', qmp: this.path('health.qmp'), intervalMs: 200, failures: 2, timeoutMs: 500 },
          }
        : {}),
    };
    await this.runProxy(config, 120_000);
  }

  /** Primary guest, agent, proxy; resolves once the seeding checkpoint made the pair protected. */
  async start(): Promise<void> {
    // COLO_VM_LAB_PCAP=1 keeps a capture of both VM-side interfaces in the lab directory, for debugging.
    if (process.env.COLO_VM_LAB_PCAP === '1')
      for (const iface of [this.topo.primaryTap, 'xsec'])
        this.spawn(`tcpdump-${iface}`, this.topo.proxy, 'tcpdump', [
          '-i',
          iface,
          '-nn',
          '-U',
          '-w',
          this.path(`${iface}.pcap`),
        ]);
    await this.bootPrimary();
    await this.startAgent();
    await this.startProxy();
  }

  /** Runs the HTTP client in the client namespace. */
  client(job: Record<string, unknown>, name = 'client'): LabProcess {
    return this.runClient(name, clientScript, 80, job);
  }

  /** The pids of the secondary's QEMU processes (their command lines name the driver's work directory). */
  secondaryQemuPids(): number[] {
    const marker = this.path('secondary');
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
        if (cmdline.startsWith(qemuBinary) || cmdline.includes('qemu-system')) {
          if (cmdline.includes(marker)) pids.push(Number(entry));
        }
      } catch {
        // The process exited while we looked.
      }
    }
    return pids;
  }

  async stop(keep = false): Promise<void> {
    this.monitor?.close();
    for (const proc of [...this.processes].reverse()) await proc.stop();
    for (const pid of this.secondaryQemuPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves when `file` contains `needle`; polls every 50 ms up to timeoutMs, or fails once `alive()` is false. */
export async function waitForFile(
  file: string,
  needle: string,
  timeoutMs: number,
  alive: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // Not created yet.
    }
    if (text.includes(needle)) return;
    if (!alive()) throw new Error(`the process writing ${file} exited before "${needle}":\n${text.slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(`no "${needle}" in ${file} within ${timeoutMs} ms:\n${text.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
