// The cloud-init NoCloud seed: a real FAT volume labelled cidata (read back
// with blkid and mtools), the key it authorises, its place on QEMU's command
// line and in the warm-start key. Booting with it is cloud-image.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loginKey, prepareCloudBoot, seedFiles } from '../src/drivers/qemu/cloud-seed.js';
import { qemuArgs, type LaunchSpec } from '../src/drivers/qemu/launch.js';
import { machineShape } from '../src/drivers/qemu/warm/args.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'djinn-seed-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const mtype = (img: string, file: string) =>
  execFileSync('mtype', ['-i', img, `::${file}`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();

describe('cloud-init seed', () => {
  it('is a vfat volume labelled cidata with meta-data and user-data that authorise our key for root', async () => {
    const build = mkdtempSync(path.join(work, 'build-'));
    const cache = path.join(work, 'cache');
    const boot = await prepareCloudBoot({ cacheDir: cache, buildDir: build, imageId: 'a'.repeat(64) });
    const blkid = execFileSync('blkid', ['-o', 'export', boot.seed.file]).toString();
    expect(blkid).toMatch(/^TYPE=vfat$/m);
    expect(blkid).toMatch(/^LABEL=cidata$/m);
    const key = await loginKey(path.join(cache, 'catalogue-key'));
    expect(mtype(boot.seed.file, 'meta-data')).toMatch(/^instance-id: iid-djinn-[0-9a-f]{16}$/m);
    const ud = mtype(boot.seed.file, 'user-data');
    expect(ud.startsWith('#cloud-config\n')).toBe(true);
    expect(ud).toContain('disable_root: false');
    expect(ud).toContain(`      - ${key.publicKey}`);
    // ssh-keygen agrees that it is a valid ed25519 public key.
    const pub = path.join(work, 'key.pub');
    execFileSync('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', key.publicKey, pub]);
    expect(execFileSync('ssh-keygen', ['-l', '-f', pub]).toString()).toMatch(/ED25519/);
    expect(statSync(path.join(cache, 'catalogue-key', 'id_ed25519')).mode & 0o777).toBe(0o600);
    expect(boot.privateKey.equals(key.privateKey)).toBe(true);
  });

  it('keeps one key per cache folder and one instance-id per image', async () => {
    const cache = path.join(work, 'cache2');
    const a = await prepareCloudBoot({ cacheDir: cache, buildDir: mkdtempSync(path.join(work, 'b-')), imageId: 'img1' });
    const b = await prepareCloudBoot({ cacheDir: cache, buildDir: mkdtempSync(path.join(work, 'b-')), imageId: 'img1' });
    const c = await prepareCloudBoot({ cacheDir: cache, buildDir: mkdtempSync(path.join(work, 'b-')), imageId: 'img2' });
    expect(a.seed.id).toBe(b.seed.id);
    expect(c.seed.id).not.toBe(a.seed.id);
    const k = (await loginKey(path.join(cache, 'catalogue-key'))).publicKey;
    expect(seedFiles('img1', k).metaData).not.toBe(seedFiles('img2', k).metaData);
  });

  it('is attached read-only after the image, and its digest is part of the warm-start key', () => {
    const spec: LaunchSpec = {
      image: '/i.qcow2',
      format: 'qcow2',
      cpus: 1,
      memoryMiB: 512,
      accel: 'tcg',
      sshPort: 2,
      consoleLog: '/c',
      pidFile: '/p',
    };
    const withSeed = qemuArgs({ ...spec, seed: { file: '/tmp/x/cidata.img', id: 'cidata-0123456789abcdef' } });
    const drives = withSeed.filter((_, i) => withSeed[i - 1] === '-drive');
    expect(drives).toEqual([
      expect.stringContaining('file=/i.qcow2'),
      'file=/tmp/x/cidata.img,format=raw,if=virtio,media=disk,readonly=on,id=cidata-0123456789abcdef',
    ]);
    const other = qemuArgs({ ...spec, seed: { file: '/elsewhere/cidata.img', id: 'cidata-fedcba9876543210' } });
    const moved = qemuArgs({ ...spec, seed: { file: '/elsewhere/cidata.img', id: 'cidata-0123456789abcdef' } });
    expect(machineShape(withSeed).devices).not.toEqual(machineShape(other).devices);
    expect(machineShape(withSeed).devices).toEqual(machineShape(moved).devices);
    expect(machineShape(qemuArgs(spec)).devices).not.toEqual(machineShape(withSeed).devices);
  });
});
