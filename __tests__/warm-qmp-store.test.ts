// Warm-start building blocks against real QEMU and qemu-img, without a guest OS:
// a diskless machine (SeaBIOS finds nothing to boot and waits) is enough to
// save, load and resume a machine state over QMP, and a blank qcow2 is enough
// for the state store's bookkeeping.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient } from '../src/drivers/qemu/warm/qmp.js';
import { keyDigest, imageDigest, pinnedMachine, qemuVersion, type StateKey } from '../src/drivers/qemu/warm/key.js';
import { sha256File } from '../src/util/sha256.js';
import { readQcow2Backing, StateStore } from '../src/drivers/qemu/warm/store.js';
import { fixupScript, parseFixupOutput } from '../src/drivers/qemu/warm/fixups.js';
import { execFileSync } from 'node:child_process';

let tmp: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'warm-qmp-'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await fs.rm(tmp, { recursive: true, force: true });
});

function startQemu(
  name: string,
  memory: number,
  extra: string[] = [],
): { child: ChildProcess; qmpPath: string; exited: Promise<{ code: number | null; stderr: string }> } {
  const qmpPath = path.join(tmp, `${name}.qmp`);
  const child = spawn(
    'qemu-system-x86_64',
    [
      '-machine',
      'pc-i440fx-7.2',
      '-accel',
      'tcg',
      '-m',
      String(memory),
      '-smp',
      '1',
      '-display',
      'none',
      '-nodefaults',
      '-qmp',
      `unix:${qmpPath},server=on,wait=off`,
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  return { child, qmpPath, exited };
}

describe('QMP client with a real QEMU', () => {
  it('saves a stopped machine to a file, loads it into a new QEMU and resumes it', async () => {
    const statePath = path.join(tmp, 'a.state');
    const src = startQemu('src', 64);
    const qmp = await QmpClient.connect(src.qmpPath, { alive: () => src.child.exitCode === null });
    expect(await qmp.status()).toBe('running');
    await qmp.stop();
    expect(await qmp.status()).toBe('paused');
    await qmp.migrateToFile(statePath);
    const info = await qmp.waitMigrationDone();
    expect(info.status).toBe('completed');
    await qmp.quit();
    qmp.close();
    expect((await src.exited).code).toBe(0);
    expect((await fs.stat(statePath)).size).toBeGreaterThan(0);

    const dst = startQemu('dst', 64, ['-incoming', `exec:cat '${statePath}'`]);
    const q2 = await QmpClient.connect(dst.qmpPath, { alive: () => dst.child.exitCode === null });
    expect(await q2.waitIncomingDone()).toBe('paused');
    await q2.cont();
    expect(await q2.status()).toBe('running');
    await q2.quit();
    q2.close();
    expect((await dst.exited).code).toBe(0);
  });

  it('reports a QMP error as an exception with the class QEMU gave', async () => {
    const vm = startQemu('err', 32);
    const qmp = await QmpClient.connect(vm.qmpPath);
    await expect(qmp.execute('no-such-command')).rejects.toMatchObject({ name: 'QmpError', qmpClass: 'CommandNotFound' });
    await qmp.quit();
    qmp.close();
    await vm.exited;
  });

  it('a state saved with another memory size makes QEMU exit with a size mismatch', async () => {
    const statePath = path.join(tmp, 'mem.state');
    const src = startQemu('mem-src', 64);
    const qmp = await QmpClient.connect(src.qmpPath);
    await qmp.stop();
    await qmp.migrateToFile(statePath);
    await qmp.waitMigrationDone();
    await qmp.quit();
    qmp.close();
    await src.exited;
    const dst = startQemu('mem-dst', 128, ['-incoming', `exec:cat '${statePath}'`]);
    const q2 = await QmpClient.connect(dst.qmpPath, { alive: () => dst.child.exitCode === null }).catch(() => undefined);
    if (q2) {
      await expect(q2.waitIncomingDone(30_000)).rejects.toThrow();
      q2.close();
    }
    const end = await dst.exited;
    expect(end.code).not.toBe(0);
    expect(end.stderr).toMatch(/Size mismatch|load of migration failed/i);
  });
});

describe('state key', () => {
  const key: StateKey = {
    imageSha256: 'a'.repeat(64),
    qemuVersion: 'QEMU emulator version 7.2.22',
    machine: 'pc-i440fx-7.2',
    cpu: 'qemu64',
    accel: 'tcg',
    memoryMiB: 1024,
    cpus: 2,
    devices: ['-net nic,model=virtio', 'if=virtio'],
  };
  it('changes with every field', () => {
    const base = keyDigest(key);
    const variants: StateKey[] = [
      { ...key, imageSha256: 'b'.repeat(64) },
      { ...key, qemuVersion: 'QEMU emulator version 8.2.0' },
      { ...key, machine: 'pc-i440fx-7.1' },
      { ...key, cpu: 'max' },
      { ...key, accel: 'kvm' },
      { ...key, memoryMiB: 2048 },
      { ...key, cpus: 1 },
      { ...key, devices: ['-net nic,model=e1000', 'if=virtio'] },
    ];
    const digests = new Set(variants.map(keyDigest));
    expect(digests.size).toBe(variants.length);
    expect(digests.has(base)).toBe(false);
  });
  it('reads the QEMU version and the versioned machine type behind "pc"', async () => {
    expect(await qemuVersion()).toMatch(/^QEMU emulator version \d+\.\d+/);
    expect(await pinnedMachine()).toMatch(/^pc-i440fx-\d+\.\d+$/);
  });
});

describe('state store', () => {
  let base: string;
  let key: StateKey;
  let store: StateStore;
  beforeAll(async () => {
    base = path.join(tmp, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    const cache = path.join(tmp, 'cache');
    store = new StateStore(cache);
    key = {
      imageSha256: await imageDigest(base, store.root),
      qemuVersion: await qemuVersion(),
      machine: 'pc-i440fx-7.2',
      cpu: 'qemu64',
      accel: 'tcg',
      memoryMiB: 64,
      cpus: 1,
      devices: ['virtio-blk'],
    };
  });

  async function saveFake(content: string): Promise<void> {
    const pending = await store.beginSave(key, { path: base, format: 'qcow2' });
    expect(await readQcow2Backing(pending.overlayPath)).toBe(base);
    await fs.writeFile(pending.statePath, content);
    await pending.publish({ bootSeconds: 1 });
  }

  it('publishes a state and finds it again, overlay and state together', async () => {
    const scratch = await fs.mkdtemp(path.join(tmp, 'scratch-'));
    expect((await store.lookup(key, { path: base, format: 'qcow2' }, scratch)).reason).toMatch(/no saved state/);
    await saveFake('state-one');
    const r = await store.lookup(key, { path: base, format: 'qcow2' }, scratch);
    expect(r.found).toBeDefined();
    await expect(r.found!.verifyState).resolves.toBeUndefined();
    expect(path.dirname(r.found!.overlayPath)).toBe(path.dirname(r.found!.statePath));
    expect(await fs.readFile(r.found!.statePath, 'utf8')).toBe('state-one');
    // nothing half-written is left in view
    const names = await fs.readdir(store.keyDir(key));
    expect(names.filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('a second publish replaces the first atomically; concurrent publishes leave one valid state', async () => {
    await Promise.all([saveFake('state-two'), saveFake('state-three')]);
    const r = await store.lookup(key, { path: base, format: 'qcow2' }, tmp);
    expect(r.found).toBeDefined();
    await r.found!.verifyState;
    expect(['state-two', 'state-three']).toContain(await fs.readFile(r.found!.statePath, 'utf8'));
  });

  it('rejects a damaged state file (same size, other bytes) through verifyState', async () => {
    await saveFake('state-good');
    const r = await store.lookup(key, { path: base, format: 'qcow2' }, tmp);
    await fs.chmod(r.found!.statePath, 0o644);
    await fs.writeFile(r.found!.statePath, 'state-BAD!');
    const again = await store.lookup(key, { path: base, format: 'qcow2' }, tmp);
    await expect(again.found!.verifyState).rejects.toThrow(/damaged/);
  });

  it('rejects a truncated state file and a changed overlay at lookup', async () => {
    await saveFake('state-full');
    const r = await store.lookup(key, { path: base, format: 'qcow2' }, tmp);
    await fs.chmod(r.found!.statePath, 0o644);
    await fs.writeFile(r.found!.statePath, 'short');
    expect((await store.lookup(key, { path: base, format: 'qcow2' }, tmp)).reason).toMatch(/bytes, expected/);

    await saveFake('state-x');
    const r2 = await store.lookup(key, { path: base, format: 'qcow2' }, tmp);
    await fs.chmod(r2.found!.overlayPath, 0o644);
    execFileSync('qemu-io', ['-c', 'write -P 0x55 0 4k', r2.found!.overlayPath]);
    const r3 = await store.lookup(key, { path: base, format: 'qcow2' }, tmp);
    expect(r3.reason).toMatch(/overlay/);
  });

  it('a state for another key is not found, and forget() hides the current one', async () => {
    await saveFake('state-y');
    expect((await store.lookup({ ...key, memoryMiB: 128 }, { path: base, format: 'qcow2' }, tmp)).reason).toMatch(/no saved state/);
    await store.forget(key);
    expect((await store.lookup(key, { path: base, format: 'qcow2' }, tmp)).reason).toMatch(/no saved state/);
  });

  it('when the base image moved, boots a private rebased copy of the overlay', async () => {
    await saveFake('state-z');
    const moved = path.join(tmp, 'moved.qcow2');
    await fs.copyFile(base, moved);
    const scratch = await fs.mkdtemp(path.join(tmp, 'scratch-'));
    const r = await store.lookup(key, { path: moved, format: 'qcow2' }, scratch);
    expect(r.found).toBeDefined();
    expect(path.dirname(r.found!.overlayPath)).toBe(scratch);
    expect(await readQcow2Backing(r.found!.overlayPath)).toBe(moved);
    // the stored overlay itself is untouched
    expect(await sha256File(path.join(r.found!.dir, 'overlay.qcow2'))).toBe(r.found!.manifest.overlay.sha256);
  });

  it('removes states unused for long, keeps the ones in use', async () => {
    await saveFake('state-used');
    const other: StateKey = { ...key, memoryMiB: 96 };
    const pending = await store.beginSave(other, { path: base, format: 'qcow2' });
    await fs.writeFile(pending.statePath, 'old');
    await pending.publish();
    const old = new Date(Date.now() - 30 * 24 * 3600_000);
    await fs.utimes(path.join(store.keyDir(other), 'current'), old, old);
    await store.removeUnused();
    expect((await store.lookup(other, { path: base, format: 'qcow2' }, tmp)).reason).toMatch(/no saved state/);
    expect((await store.lookup(key, { path: base, format: 'qcow2' }, tmp)).found).toBeDefined();
  });

  it('remembers image digests by path, size and time, and sees a changed image', async () => {
    const img = path.join(tmp, 'img.bin');
    await fs.writeFile(img, 'one');
    const d1 = await imageDigest(img, store.root);
    expect(d1).toBe(await sha256File(img));
    await fs.writeFile(img, 'two!');
    const d2 = await imageDigest(img, store.root);
    expect(d2).not.toBe(d1);
  });
});

describe('guest fix-up script', () => {
  it('is valid sh and reports what it did (run here as an unprivileged user would, with no root tools)', () => {
    const script = fixupScript(Date.now());
    execFileSync('sh', ['-n', '-c', script]);
    // Run in a shell where id/sudo/date/hwclock/busybox/perl/python3 are all missing: the fall-backs must hold.
    const bin = path.join(tmp, 'emptybin');
    execFileSync('mkdir', ['-p', bin]);
    const out = execFileSync('/bin/sh', ['-c', script], { env: { PATH: bin } }).toString();
    const r = parseFixupOutput(out);
    expect(r.clock).toBe('none');
    expect(['mixed', 'none']).toContain(r.rng);
    expect(r.warnings.length).toBeGreaterThan(0);
  });
  it('parses a full success without warnings', () => {
    expect(parseFixupOutput('djinn-warm-fixup clock=date rng=reseeded-perl\n')).toEqual({
      clock: 'date',
      rng: 'reseeded-perl',
      warnings: [],
    });
    expect(parseFixupOutput('garbage').warnings[0]).toMatch(/did not report/);
  });
});
