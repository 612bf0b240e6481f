// Our image builder: the CLI's argument checks, what the built test image
// contains (read from the disk file itself: FAT boot partition with mtools,
// ext4 root with debugfs), and one real build of the systemd flavor with an
// authorized key, booted through the CLI.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MIB } from '../src/images/builder/disk.js';
import { moduleOrder } from '../src/images/builder/initrd.js';
import { buildableSuite } from '../src/images/builder/suites.js';
import { verifyImage } from '../src/images/verify.js';
import { runCli, type CliResult, projectArgs } from './helpers/cli.js';
import { testImage } from './helpers/vm.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-builder-test-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const show = (r: CliResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
const ROOT_OFFSET = (2048 + BOOT_MIB * 2048) * 512;

/** A qcow2's root file system, readable with debugfs (no mount, no loop device). */
class DiskReader {
  readonly raw: string;
  constructor(qcow2: string, name: string) {
    this.raw = path.join(work, `${name}.raw`);
    execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', qcow2, this.raw]);
  }
  cat(file: string): string {
    return execFileSync('debugfs', ['-R', `cat ${file}`, `${this.raw}?offset=${ROOT_OFFSET}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
  }
  exists(file: string): boolean {
    const out = execFileSync('debugfs', ['-R', `stat ${file}`, `${this.raw}?offset=${ROOT_OFFSET}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
    return /Inode: \d+/.test(out);
  }
  boot(file: string): string {
    return execFileSync('mtype', ['-i', `${this.raw}@@1M`, `::/${file}`], {
      env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
      maxBuffer: 64 << 20,
    }).toString();
  }
  close(): void {
    rmSync(this.raw, { force: true });
  }
}

describe('image build: arguments', () => {
  it('refuses names it cannot build, unknown flavors and -o with -disks, with exit status 2', async () => {
    const a = await runCli(['image', 'build', 'centos/7']);
    expect(a.code, show(a)).toBe(2);
    expect(a.stderr).toMatch(/cannot build "centos\/7"/);
    const b = await runCli(['image', 'build', 'debian/stable', '-flavor', 'tiny']);
    expect(b.code, show(b)).toBe(2);
    expect(b.stderr).toMatch(/-flavor: expected fast, systemd or cloud/);
    const c = await runCli(['image', 'build', 'debian/stable', '-o', 'x.qcow2', '-disks', 'd']);
    expect(c.code, show(c)).toBe(2);
    expect(c.stderr).toMatch(/either -o FILE or -disks DIR/);
  });

  it('knows Debian suites and aliases, and orders kernel modules by their dependencies', () => {
    expect(buildableSuite('debian/stable')).toBe('stable');
    expect(buildableSuite('debian/bookworm')).toBe('bookworm');
    expect(buildableSuite('debian/hamm')).toBeUndefined();
    expect(buildableSuite('ubuntu/24.04')).toBeUndefined();
    const dep = [
      'kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz',
      'kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz',
      'kernel/net/core/failover.ko.xz:',
      'kernel/drivers/block/virtio_blk.ko.xz:',
    ].join('\n');
    expect(moduleOrder(dep, ['virtio_pci', 'virtio_blk', 'virtio_net'])).toEqual([
      'kernel/drivers/block/virtio_blk.ko.xz',
      'kernel/net/core/failover.ko.xz',
      'kernel/drivers/net/net_failover.ko.xz',
      'kernel/drivers/net/virtio_net.ko.xz',
    ]);
  });
});

describe('image build: the fast test image', () => {
  it('is a plain qcow2 with a bootable FAT partition and the Djinn image requirements in its root', async () => {
    const image = testImage();
    const v = await verifyImage(image, 'qcow2');
    expect(v.format).toBe('qcow2');
    const disk = new DiskReader(image, 'fast');
    try {
      const cfg = disk.boot('syslinux.cfg');
      expect(cfg).toMatch(/APPEND root=\/dev\/vda2 .*console=ttyS0/);
      expect(disk.boot('vmlinuz').length).toBeGreaterThan(1_000_000);
      const sshd = disk.cat('/etc/ssh/sshd_config.d/djinn.conf');
      for (const line of ['PermitRootLogin yes', 'PermitEmptyPasswords yes', 'AcceptEnv *', 'UsePAM no']) expect(sshd).toContain(line);
      expect(disk.cat('/etc/ssh/sshd_config')).toMatch(/^Subsystem\s+sftp\s+\S+/m);
      expect(disk.cat('/etc/shadow')).toMatch(/^root::/m);
      expect(disk.cat('/etc/inittab')).toContain('/usr/sbin/sshd -D -e');
      for (const f of ['/usr/bin/git', '/usr/bin/dash', '/usr/lib/openssh/sftp-server', '/etc/ssh/ssh_host_ed25519_key', '/root/.ssh']) {
        expect(disk.exists(f), f).toBe(true);
      }
      // Host keys are the build's own, never the builder machine's.
      const hostKey = '/etc/ssh/ssh_host_ed25519_key.pub';
      if (existsSync(hostKey)) expect(disk.cat(hostKey).split(' ')[1]).not.toBe(readFileSync(hostKey, 'utf8').split(' ')[1]);
    } finally {
      disk.close();
    }
  });
});

describe('image build: a real build', () => {
  it('builds the systemd flavor with an authorized key into a disks folder; its own host keys; it boots and runs a job', async () => {
    const key = path.join(work, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'builder-test', '-f', key]);
    const disks = path.join(work, 'disks');
    const b = await runCli(['image', 'build', 'debian/stable', '-flavor', 'systemd', '-disks', disks, '-authorized-key', `${key}.pub`]);
    expect(b.code, show(b)).toBe(0);
    const image = path.join(disks, 'qemu', 'x86_64', 'debian', 'stable');
    expect(b.stdout.trim()).toBe(image);
    expect(b.stderr).toMatch(/installing packages with mmdebstrap/);
    expect(b.stderr).toMatch(/done: /);
    const disk = new DiskReader(image, 'systemd');
    const fast = new DiskReader(testImage(), 'fast2');
    try {
      expect(disk.cat('/root/.ssh/authorized_keys')).toBe(readFileSync(`${key}.pub`, 'utf8'));
      expect(disk.exists('/etc/systemd/system/multi-user.target.wants/djinn-net.service')).toBe(true);
      const k = '/etc/ssh/ssh_host_ed25519_key.pub';
      expect(disk.cat(k).split(' ')[1]).not.toBe(fast.cat(k).split(' ')[1]);
    } finally {
      disk.close();
      fast.close();
    }
    // Boot it: systemd runs, the DHCP unit configured the NIC; log in with the key.
    const dir = path.join(work, 'boot');
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, '.djinn.yml'),
      [
        'driver:',
        '  type: qemu',
        '  image: debian/stable',
        'stages:',
        '- s',
        'jobs:',
        '- stage: s',
        '  commands:',
        '  - systemctl is-active djinn-net ssh',
        '  - ip -4 addr show eth0',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(dir, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory 1024\n}\n`);
    const r = await runCli([
      ...projectArgs(dir, { artifacts: dir }),
      '-ssh-key',
      key,
      '-image-build',
      'never',
      '-warm',
      'off',
      '-cache-dir',
      path.join(work, 'cache'),
    ]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^active\nactive$/m);
    expect(r.stdout).toContain('inet 10.0.2.15/24');
  }, 600_000);
});
