// Warm starts with real VMs (TCG): the first start saves a state, later ones
// restore it; clones run at once, get the host's clock and their own random
// bytes; a state that does not fit or is damaged falls back to a cold boot;
// a changed image gets a new state. Boots our test image through the same
// sequence the qemu driver uses (launch API, runWarmSequence, SSH transport).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyDigest, type StateKey } from '../src/drivers/qemu/warm/key.js';
import { sha256File } from '../src/util/sha256.js';
import type { StateManifest } from '../src/drivers/qemu/warm/store.js';
import { sh, startWarmVm, stopAllWarmVms, testImage, type WarmVm } from './helpers/warm-vm.js';

let image: { path: string; format: 'qcow2' };
let cacheDir: string;
let scratch: string;

beforeAll(async () => {
  image = testImage();
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'warm-vm-test-'));
  cacheDir = path.join(scratch, 'cache');
}, 900_000);

afterAll(async () => {
  await stopAllWarmVms();
  await fs.rm(scratch, { recursive: true, force: true });
});

/** Guest uptime in seconds and the host's seconds since this VM's QEMU was launched. */
async function uptimeVsLaunch(vm: WarmVm, launchedAt: number): Promise<{ guest: number; host: number }> {
  const guest = Number((await sh(vm, 'cat /proc/uptime')).split(' ')[0]);
  return { guest, host: (Date.now() - launchedAt) / 1000 };
}

async function currentManifest(key: StateKey): Promise<StateManifest> {
  const dir = path.join(cacheDir, 'warm', keyDigest(key));
  const { generation } = JSON.parse(await fs.readFile(path.join(dir, 'current'), 'utf8')) as { generation: string };
  return JSON.parse(await fs.readFile(path.join(dir, generation, 'manifest.json'), 'utf8')) as StateManifest;
}

describe('warm starts with real VMs', () => {
  let savedKey: StateKey;

  it('the first start boots and saves a state; the second restores it', async () => {
    let t = Date.now();
    const first = await startWarmVm({ image, cacheDir });
    try {
      expect(first.result.start).toBe('booted');
      expect(first.log.join('\n')).toMatch(/saved the booted machine/);
      // The saving machine goes on working after the save.
      expect(await sh(first, 'echo still-here')).toBe('still-here\n');
      const u = await uptimeVsLaunch(first, t);
      expect(u.guest).toBeLessThan(u.host); // a booted guest is never older than its QEMU
      savedKey = first.result.stateKey!;
      expect(savedKey.imageSha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await first.stop();
    }
    const manifest = await currentManifest(savedKey);
    expect(manifest.state.bytes).toBeGreaterThan(10e6);

    t = Date.now();
    const second = await startWarmVm({ image, cacheDir });
    try {
      expect(second.result.start).toBe('restored');
      expect(second.log.join('\n')).toMatch(/restoring saved state/);
      // The guest's own view: it has been up longer than this QEMU process exists,
      // which only a machine that was booted earlier and restored can be.
      const u = await uptimeVsLaunch(second, t);
      expect(u.guest).toBeGreaterThan(u.host);
      expect(second.fixups).toMatchObject({ clock: 'date' });
      expect(second.fixups!.rng).toMatch(/^reseeded/);
    } finally {
      await second.stop();
    }
    // Nothing wrote the saved overlay or state.
    const dir = path.join(cacheDir, 'warm', keyDigest(savedKey), manifest.generation);
    expect(await sha256File(path.join(dir, 'overlay.qcow2'))).toBe(manifest.overlay.sha256);
  });

  it('two clones start at once from one state, each with the host clock, its own disk and its own random bytes', async () => {
    const [a, b] = await Promise.all([startWarmVm({ image, cacheDir }), startWarmVm({ image, cacheDir })]);
    try {
      expect(a.result.start).toBe('restored');
      expect(b.result.start).toBe('restored');
      for (const vm of [a, b]) {
        const guestNow = Number((await sh(vm, 'date +%s')).trim());
        expect(Math.abs(guestNow - Date.now() / 1000)).toBeLessThan(5);
      }
      const [ra, rb] = await Promise.all([sh(a, 'head -c 32 /dev/urandom | od -An -tx1'), sh(b, 'head -c 32 /dev/urandom | od -An -tx1')]);
      expect(ra.replace(/\s/g, '')).toMatch(/^[0-9a-f]{64}$/);
      expect(ra).not.toBe(rb);
      await sh(a, 'echo from-a > /root/clone-file && sync');
      expect((await a.session.exec('cat /root/clone-file')).stdout.toString()).toBe('from-a\n');
      expect((await b.session.exec('cat /root/clone-file')).code).not.toBe(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a state that does not fit this machine (other memory size) falls back to a cold boot, which saves a fresh one', async () => {
    // Plant the 512 MiB state under the key of a 768 MiB machine, as a stale or wrong cache entry would.
    const good = await currentManifest(savedKey);
    const key768: StateKey = { ...savedKey, memoryMiB: 768 };
    const srcDir = path.join(cacheDir, 'warm', keyDigest(savedKey), good.generation);
    const dstRoot = path.join(cacheDir, 'warm', keyDigest(key768));
    await fs.mkdir(path.join(dstRoot, 'planted'), { recursive: true });
    for (const f of ['overlay.qcow2', 'machine.state']) await fs.copyFile(path.join(srcDir, f), path.join(dstRoot, 'planted', f));
    await fs.writeFile(
      path.join(dstRoot, 'planted', 'manifest.json'),
      JSON.stringify({ ...good, key: key768, keyDigest: keyDigest(key768), generation: 'planted' }),
    );
    await fs.writeFile(path.join(dstRoot, 'current'), JSON.stringify({ generation: 'planted' }));

    const vm = await startWarmVm({ image, cacheDir, memoryMiB: 768 });
    try {
      const log = vm.log.join('\n');
      expect(log).toMatch(/could not restore the saved machine \(.*(Size mismatch|load of migration failed|status).*\); booting cold/);
      expect(vm.result.start).toBe('booted');
      expect(await sh(vm, 'echo build-passes')).toBe('build-passes\n');
      expect(log).toMatch(/saved the booted machine/);
    } finally {
      await vm.stop();
    }
    expect((await currentManifest(key768)).generation).not.toBe('planted');
  });

  it('a damaged state file falls back to a cold boot', async () => {
    const m = await currentManifest(savedKey);
    const statePath = path.join(cacheDir, 'warm', keyDigest(savedKey), m.generation, 'machine.state');
    const fh = await fs.open(statePath, 'r+');
    await fh.write(Buffer.alloc(4096, 0xa5), 0, 4096, Math.floor(m.state.bytes / 2));
    await fh.close();
    const vm = await startWarmVm({ image, cacheDir });
    try {
      expect(vm.log.join('\n')).toMatch(/could not restore the saved machine \(.+\); booting cold/);
      expect(vm.result.start).toBe('booted');
      expect(await sh(vm, 'echo ok')).toBe('ok\n');
    } finally {
      await vm.stop();
    }
    expect((await currentManifest(savedKey)).generation).not.toBe(m.generation);
  });

  it('the same image at another path restores (rebased overlay); once changed, it gets a new state', async () => {
    const copy = path.join(scratch, 'copy.qcow2');
    await fs.copyFile(image.path, copy);
    const moved = await startWarmVm({ image: { path: copy, format: 'qcow2' }, cacheDir });
    try {
      expect(moved.result.start).toBe('restored');
    } finally {
      await moved.stop();
    }
    // Change the image in place: a write into the unused gap before the first partition.
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 65536 4096', copy]);
    const changed = await startWarmVm({ image: { path: copy, format: 'qcow2' }, cacheDir });
    try {
      expect(changed.result.start).toBe('booted');
      expect(changed.log.join('\n')).toMatch(/no saved state/);
      expect(keyDigest(changed.result.stateKey!)).not.toBe(keyDigest(savedKey));
    } finally {
      await changed.stop();
    }
  });

  it('-warm off boots without saving; refresh boots and replaces the state', async () => {
    const before = await currentManifest(savedKey);
    const off = await startWarmVm({ image, cacheDir, mode: 'off' });
    try {
      expect(off.result.start).toBe('booted');
      expect(off.log).toEqual([]);
    } finally {
      await off.stop();
    }
    expect((await currentManifest(savedKey)).generation).toBe(before.generation);
    const refresh = await startWarmVm({ image, cacheDir, mode: 'refresh' });
    try {
      expect(refresh.result.start).toBe('booted');
    } finally {
      await refresh.stop();
    }
    expect((await currentManifest(savedKey)).generation).not.toBe(before.generation);
  });
});
