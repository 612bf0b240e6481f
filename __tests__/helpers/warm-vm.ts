// Boots our test image through the qemu driver's own warm boot (bootWarm: plan, launch,
// restore or boot and save, connect, fix up), for the warm-start VM tests and bench.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, type QemuProcess, type LaunchSpec } from '../../src/drivers/qemu/launch.js';
import type { WarmMode } from '../../src/drivers/qemu/warm/save-restore.js';
import type { WarmSequenceResult } from '../../src/drivers/qemu/warm/sequence.js';
import type { FixupResult } from '../../src/drivers/qemu/warm/fixups.js';
import { bootWarm } from '../../src/drivers/qemu/warm/driver-boot.js';
import { silentReporter } from '../../src/core/reporter.js';
import type { SshSession } from '../../src/transport/ssh/index.js';
import { testImage as vmTestImage } from './vm.js';
import { testSettings } from './settings.js';

/** The test image (our builder's `fast` debian/stable, via helpers/vm.ts and scripts/test-image.sh). */
export function testImage(): { path: string; format: 'qcow2' } {
  return { path: vmTestImage(), format: 'qcow2' };
}

export interface WarmVm {
  result: WarmSequenceResult<QemuProcess>;
  session: SshSession;
  fixups?: FixupResult;
  /** The warm sequence's own lines. */
  log: string[];
  port: number;
  stop(): Promise<void>;
}

export interface WarmVmOptions {
  image: { path: string; format: 'qcow2' | 'raw' };
  cacheDir: string;
  mode?: WarmMode;
  memoryMiB?: number;
  cpus?: number;
}

/** A loaded two-core machine boots slowly: no stall watch before the boot timeout. */
const BOOT_TIMEOUT_MS = 240_000;

const live = new Set<WarmVm>();

/** Boots (or restores) one VM and connects to it. */
export async function startWarmVm(opts: WarmVmOptions): Promise<WarmVm> {
  const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'warm-vm-'));
  const log: string[] = [];
  const port = await freePort();
  const spec: LaunchSpec = {
    image: opts.image.path,
    format: opts.image.format,
    cpus: opts.cpus ?? 1,
    memoryMiB: opts.memoryMiB ?? 512,
    accel: 'tcg',
    sshPort: port,
    consoleLog: path.join(tempDir, 'console.log'),
    pidFile: path.join(tempDir, 'qemu.pid'),
  };
  const procs: QemuProcess[] = [];
  let session: SshSession | undefined;
  const cleanup = async () => {
    await session?.close().catch(() => undefined);
    for (const p of procs) await p.stop();
    await fs.rm(tempDir, { recursive: true, force: true });
  };
  try {
    const booted = await bootWarm({
      settings: testSettings(tempDir, { cacheDir: opts.cacheDir, qemu: { warm: opts.mode ?? 'on' } }),
      image: { ...opts.image, name: 'debian/stable', source: 'file' },
      spec,
      tempDir,
      deadline: Date.now() + BOOT_TIMEOUT_MS,
      stallMs: BOOT_TIMEOUT_MS,
      reporter: silentReporter,
      signal: new AbortController().signal,
      onProcess: (p) => procs.push(p),
      warmLog: (l) => log.push(l),
    });
    session = booted.session;
    const vm: WarmVm = {
      result: booted.sequence,
      session,
      fixups: booted.fixups,
      log,
      port,
      stop: async () => {
        live.delete(vm);
        await cleanup();
      },
    };
    live.add(vm);
    return vm;
  } catch (err) {
    await cleanup();
    throw Object.assign(err as Error, { message: `${(err as Error).message}\nlog:\n${log.join('\n')}` });
  }
}

/** Stops every VM still running (afterAll). */
export async function stopAllWarmVms(): Promise<void> {
  for (const vm of [...live]) await vm.stop();
}

/** Runs a command in the VM and returns its stdout as text. */
export async function sh(vm: WarmVm, command: string): Promise<string> {
  const r = await vm.session.exec(command);
  if (r.code !== 0) throw new Error(`${command} exited ${r.code}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}
