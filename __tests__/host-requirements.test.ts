// Host requirements: which programs each capability needs, the one message
// and apt-get line for everything missing, and the CLI's exit status 2 before
// any machine starts. PATH lookups against real folders (no VM, no lock).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  aptLine,
  ensureCapabilities,
  HostRequirementError,
  missingFor,
  missingMessage,
  onMissing,
  REQUIREMENTS,
  type Missing,
} from '../src/host/requirements.js';
import { prepareCloudBoot } from '../src/drivers/qemu/cloud-seed.js';
import { buildTempRoot } from '../src/config/settings.js';
import { CLI, runCli } from './helpers/cli.js';

async function binDir(programs: string[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-path-'));
  for (const p of programs) {
    await writeFile(path.join(dir, p), '#!/bin/sh\nexit 0\n');
    await chmod(path.join(dir, p), 0o755);
  }
  return dir;
}

describe('host requirements', () => {
  afterEach(() =>
    onMissing(async (m) => {
      throw new HostRequirementError(missingMessage(m), m);
    }),
  );

  it('finds programs on PATH and lists every missing one with its package, once', async () => {
    const dir = await binDir(['qemu-system-x86_64']);
    const m = missingFor(['qemu', 'image-build'], { PATH: dir });
    expect(m.programs).toContain('qemu-img');
    expect(m.programs).not.toContain('qemu-system-x86_64');
    expect(m.programs).toContain('mmdebstrap');
    expect(m.programs.filter((p) => p === 'qemu-img')).toHaveLength(1);
    expect(m.packages).toContain('qemu-utils');
    expect(m.packages).not.toContain('qemu-system-x86');
    expect(new Set(m.packages).size).toBe(m.packages.length);
    const none = missingFor(['qemu'], { PATH: await binDir(['qemu-system-x86_64', 'qemu-img']) });
    expect(none.programs).toEqual([]);
  });

  it('knows the package of each builder tool', () => {
    const pkg = Object.fromEntries(REQUIREMENTS['image-build'].map((r) => [r.need, r.pkg]));
    expect(pkg).toMatchObject({
      sfdisk: 'fdisk',
      'mkfs.fat': 'dosfstools',
      mcopy: 'mtools',
      syslinux: 'syslinux',
      'mbr.bin': 'syslinux-common',
      mke2fs: 'e2fsprogs',
      'ssh-keygen': 'openssh-client',
      xz: 'xz-utils',
    });
  });

  it('says it in one paragraph with the single apt-get line', () => {
    const m: Missing = { capabilities: ['image-build'], programs: ['sfdisk', 'mkfs.fat'], packages: ['fdisk', 'dosfstools'] };
    expect(missingMessage(m, false)).toBe(
      'building an image needs programs this machine does not have: sfdisk, mkfs.fat. ' +
        'Install them with: sudo apt-get install -y --no-install-recommends fdisk dosfstools',
    );
    expect(aptLine(['fdisk'], true)).toBe('apt-get install -y --no-install-recommends fdisk');
  });

  it('hands everything missing to the front end once, and fails when it is still missing', async () => {
    const saved = process.env.PATH;
    process.env.PATH = await binDir([]);
    const calls: Missing[] = [];
    onMissing(async (m) => void calls.push(m));
    try {
      await expect(ensureCapabilities(['qemu'])).rejects.toThrow(
        /qemu-system-x86_64, qemu-img\. Install them with: .*apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils$/,
      );
    } finally {
      process.env.PATH = saved;
    }
    expect(calls.map((c) => c.packages)).toEqual([['qemu-system-x86', 'qemu-utils']]);
  });
});

describe('the cloud-init seed', () => {
  it('is a capability of its own, checked when a cloud image is about to boot', async () => {
    expect(Object.fromEntries(REQUIREMENTS['cloud-seed'].map((r) => [r.need, r.pkg]))).toEqual({
      'mkfs.vfat': 'dosfstools',
      mcopy: 'mtools',
    });
    // No image needs it unless it boots with a seed: neither qemu nor the builder lists it.
    expect(REQUIREMENTS.qemu.map((r) => r.need)).not.toContain('mcopy');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-seed-'));
    const saved = process.env.PATH;
    // mcopy lives in /usr/bin: off this PATH it is missing (mkfs.vfat is still found in /usr/sbin).
    process.env.PATH = await binDir([]);
    try {
      const err = await prepareCloudBoot({ buildDir: dir, imageId: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe('DriverError');
      expect((err as Error).message).toMatch(
        /booting a cloud image .* needs programs .*: mcopy\. Install them with: .*apt-get install -y --no-install-recommends mtools$/,
      );
    } finally {
      process.env.PATH = saved;
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('temporary folders', () => {
  it('go under RUNNER_TEMP, else the cache folder, never the system temp folder', () => {
    expect(buildTempRoot({ RUNNER_TEMP: '/r/tmp', XDG_CACHE_HOME: '/c' })).toBe('/r/tmp');
    expect(buildTempRoot({ XDG_CACHE_HOME: '/c' })).toBe('/c/djinn/tmp');
    expect(buildTempRoot({})).toBe(path.join(os.homedir(), '.cache', 'djinn', 'tmp'));
  });
});

describe('the CLI before a build', () => {
  it('exits 2 with the apt-get line when QEMU is missing, before anything starts', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-hostcheck-'));
    await mkdir(path.join(dir, 'art'));
    await writeFile(
      path.join(dir, '.djinn.yml'),
      'driver:\n  type: qemu\n  image: debian/stable\nstages: [a]\njobs:\n- stage: a\n  commands: [echo]\n',
    );
    const res = await runCli(['-cache-dir', path.join(dir, 'cache'), '-artifacts', 'art'], { cwd: dir, env: { PATH: await binDir([]) } });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(
      /running a qemu build and building an image needs programs this machine does not have: qemu-system-x86_64, qemu-img, .*mmdebstrap/,
    );
    expect(res.stderr).toMatch(/apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils mmdebstrap /);
    expect(res.stderr).toMatch(/-install-deps/);
    expect(res.stderr.match(/apt-get install/g)).toHaveLength(1);
    expect(res.stderr).not.toMatch(/^\s+at /m);
  });

  it('image build exits 2 with the apt-get line when a builder tool is missing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-hostcheck-'));
    const res = await runCli(['image', 'build', 'debian/stable', '-o', path.join(dir, 'x.qcow2')], {
      cwd: dir,
      env: { PATH: await binDir([]) },
    });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/building an image needs programs this machine does not have: .*mmdebstrap/);
    expect(res.stderr).toMatch(/apt-get install -y --no-install-recommends .*mmdebstrap/);
  });

  it('image build as a user without passwordless sudo names the three ways, and leaves nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-nosudo-'));
    await chmod(dir, 0o777);
    // nobody: no sudoers entry (or no sudo at all).
    const res = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        'runuser',
        [
          '-u',
          'nobody',
          '--',
          'env',
          `HOME=${dir}`,
          'PATH=/usr/local/bin:/usr/bin:/bin',
          process.execPath,
          CLI,
          'image',
          'build',
          'debian/stable',
          '-o',
          path.join(dir, 'x.qcow2'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(res.code, res.out).toBe(1);
    expect(res.out).toMatch(
      new RegExp(
        /no passwordless sudo\. Either run it as root; or allow this user passwordless sudo .*; /.source +
          /or let it use unprivileged user namespaces: .*\/etc\/subuid .*Or use a prebuilt image/.source,
      ),
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});
