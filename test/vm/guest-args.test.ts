import { describe, expect, it } from 'vitest';
import { guestQemuArgs, type GuestImage } from '../support/guest-vm.js';

const image = { dir: '/g', kernel: '/g/vmlinuz', initrd: '/g/initrd.gz' } as GuestImage;
const base = { tap: 'tap7', mac: '52:54:00:00:00:07', ip: '10.9.0.2/24' };

const valueAfter = (args: string[], flag: string): string[] =>
  args.flatMap((arg, i) => (arg === flag && i + 1 < args.length ? [args[i + 1]!] : []));

describe('guestQemuArgs', () => {
  it('passes the address, the console and init_on_free=1 on the kernel command line by default', () => {
    const [append] = valueAfter(guestQemuArgs(image, base), '-append');
    expect(append?.split(' ')).toEqual(['console=ttyS0', 'quiet', 'panic=-1', 'colo.ip=10.9.0.2/24', 'init_on_free=1']);
  });

  it('replaces the default extras and adds the gateway when asked', () => {
    const args = guestQemuArgs(image, { ...base, gateway: '10.9.0.1', appendExtra: ['loglevel=7'] });
    expect(valueAfter(args, '-append')[0]?.split(' ').slice(3)).toEqual([
      'colo.ip=10.9.0.2/24',
      'colo.gw=10.9.0.1',
      'loglevel=7',
    ]);
  });

  it('attaches the tap and MAC, sizes memory, and adds QMP and the serial file only when given', () => {
    const plain = guestQemuArgs(image, base);
    expect(valueAfter(plain, '-netdev')).toEqual(['tap,id=n0,ifname=tap7,script=no,downscript=no,vnet_hdr=off']);
    expect(valueAfter(plain, '-device')).toEqual(['virtio-net-pci,netdev=n0,mac=52:54:00:00:00:07']);
    expect(valueAfter(plain, '-m')).toEqual(['128']);
    expect(valueAfter(plain, '-serial')).toEqual(['null']);
    expect(plain).not.toContain('-qmp');

    const full = guestQemuArgs(image, {
      ...base,
      memMiB: 256,
      qmpPath: '/run/q.sock',
      serialLog: '/run/s.log',
      extra: ['-incoming', 'defer'],
    });
    expect(valueAfter(full, '-m')).toEqual(['256']);
    expect(valueAfter(full, '-qmp')).toEqual(['unix:/run/q.sock,server=on,wait=off']);
    expect(valueAfter(full, '-serial')).toEqual(['file:/run/s.log']);
    expect(full.slice(-2)).toEqual(['-incoming', 'defer']);
    expect(valueAfter(full, '-kernel')).toEqual(['/g/vmlinuz']);
    expect(valueAfter(full, '-initrd')).toEqual(['/g/initrd.gz']);
  });
});
