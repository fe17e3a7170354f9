import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Network namespaces for end-to-end tests: real kernels, real veth pairs, nothing on the host's own network.
 * Every name carries a per-process tag so concurrent test files never collide, and destroy() removes all.
 */
export class Netns {
  constructor(readonly name: string) {}

  async exec(command: string, ...args: string[]): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', this.name, command, ...args], { maxBuffer: 16 << 20 });
    return stdout;
  }

  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, command, ...args], { stdio: 'pipe', ...options });
  }
}

export interface VethEnd {
  ns: Netns;
  ifname: string;
}

export async function createNetns(name: string): Promise<Netns> {
  await run('ip', ['netns', 'add', name]);
  const ns = new Netns(name);
  await ns.exec('ip', 'link', 'set', 'lo', 'up');
  // IPv6 autoconfiguration would put router solicitations and neighbour discovery on every link.
  await ns.exec('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
  await ns.exec('sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
  return ns;
}

export async function deleteNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
}

/** A veth pair with one end in each namespace, both up, offloads off (captured frames stay MTU-sized). */
export async function link(a: VethEnd, b: VethEnd, options: { mac?: [string?, string?] } = {}): Promise<void> {
  const tmpA = `v${process.pid % 100000}a${Math.floor(Math.random() * 1e4)}`;
  const tmpB = `v${process.pid % 100000}b${Math.floor(Math.random() * 1e4)}`;
  await run('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
  await run('ip', ['link', 'set', tmpA, 'netns', a.ns.name]);
  await run('ip', ['link', 'set', tmpB, 'netns', b.ns.name]);
  for (const [end, tmp, mac] of [
    [a, tmpA, options.mac?.[0]],
    [b, tmpB, options.mac?.[1]],
  ] as const) {
    await end.ns.exec('ip', 'link', 'set', tmp, 'name', end.ifname);
    if (mac) await end.ns.exec('ip', 'link', 'set', end.ifname, 'address', mac);
    await end.ns.exec('ethtool', '-K', end.ifname, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off');
    await end.ns.exec('ip', 'link', 'set', end.ifname, 'up');
  }
}

/**
 * The inline proxy's lab: a client, a primary VM and a secondary VM (same IP, same MAC), each joined by a
 * veth pair to a proxy namespace that holds three interfaces (client side, primary side, secondary side).
 * Neighbour entries are static so no ARP has to cross the proxy before the test starts.
 */
export interface InlineTopology {
  tag: string;
  client: Netns;
  primary: Netns;
  secondary: Netns;
  proxy: Netns;
  clientIp: string;
  vmIp: string;
  clientMac: string;
  vmMac: string;
  /** Interface names inside the proxy namespace. */
  proxyIfaces: { client: string; primary: string; secondary: string };
  /** The interface name inside each endpoint namespace. */
  endpointIface: string;
  destroy(): Promise<void>;
}

/** Namespaces made one by one and removed together: `destroy()` removes every one `make()` created so far. */
export function namespaceSet(): { make(name: string): Promise<Netns>; destroy(): Promise<void> } {
  const created: string[] = [];
  return {
    async make(name) {
      const ns = await createNetns(name);
      created.push(name);
      return ns;
    },
    async destroy() {
      for (const name of created) await deleteNetns(name);
    },
  };
}

export async function createInlineTopology(subnet = 77): Promise<InlineTopology> {
  const tag = `colo${process.pid % 100000}s${subnet}`;
  const names = { client: `${tag}-c`, primary: `${tag}-p`, secondary: `${tag}-s`, proxy: `${tag}-x` };
  const { make, destroy } = namespaceSet();
  try {
    const client = await make(names.client);
    const primary = await make(names.primary);
    const secondary = await make(names.secondary);
    const proxy = await make(names.proxy);
    const clientIp = `10.${subnet}.0.1`;
    const vmIp = `10.${subnet}.0.2`;
    const clientMac = '02:c0:10:00:00:01';
    const vmMac = '02:c0:10:00:00:02';
    const endpointIface = 'eth0';
    const proxyIfaces = { client: 'xcli', primary: 'xpri', secondary: 'xsec' };
    await link({ ns: client, ifname: endpointIface }, { ns: proxy, ifname: proxyIfaces.client }, { mac: [clientMac] });
    await link({ ns: primary, ifname: endpointIface }, { ns: proxy, ifname: proxyIfaces.primary }, { mac: [vmMac] });
    await link(
      { ns: secondary, ifname: endpointIface },
      { ns: proxy, ifname: proxyIfaces.secondary },
      { mac: [vmMac] },
    );
    await client.exec('ip', 'addr', 'add', `${clientIp}/24`, 'dev', endpointIface);
    await client.exec('ip', 'neigh', 'replace', vmIp, 'lladdr', vmMac, 'dev', endpointIface, 'nud', 'permanent');
    for (const vm of [primary, secondary]) {
      await vm.exec('ip', 'addr', 'add', `${vmIp}/24`, 'dev', endpointIface);
      await vm.exec('ip', 'neigh', 'replace', clientIp, 'lladdr', clientMac, 'dev', endpointIface, 'nud', 'permanent');
    }
    return {
      tag,
      client,
      primary,
      secondary,
      proxy,
      clientIp,
      vmIp,
      clientMac,
      vmMac,
      proxyIfaces,
      endpointIface,
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}
