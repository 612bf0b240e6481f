// Boots our test image through the warm-start sequence the qemu driver uses
// (launch API + runWarmSequence + SSH transport), for the warm-start VM tests and bench.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, QemuProcess, qemuArgs, type LaunchSpec } from '../../src/drivers/qemu/launch.js';
import { applyLaunchChange, type WarmMode } from '../../src/drivers/qemu/warm/save-restore.js';
import { afterConnect, runWarmSequence, type WarmSequenceResult } from '../../src/drivers/qemu/warm/sequence.js';
import type { FixupResult } from '../../src/drivers/qemu/warm/fixups.js';
import { silentReporter } from '../../src/core/reporter.js';
import { SshSession, waitForBanner } from '../../src/transport/ssh/index.js';
import { testImage as vmTestImage } from './vm.js';
import { sshTarget } from '../../src/drivers/qemu/ssh-target.js';
import { defaultSettings } from '../../src/config/settings.js';

/** The test image (our builder's `fast` debian/stable, via helpers/vm.ts and scripts/test-image.sh). */
export function testImage(): { path: string; format: 'qcow2' } {
  return { path: vmTestImage(), format: 'qcow2' };
}

export interface WarmVm {
  result: WarmSequenceResult<QemuProcess>;
  session: SshSession;
  fixups?: FixupResult;
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
    const result = await runWarmSequence(
      { mode: opts.mode ?? 'on', cacheDir: opts.cacheDir, tempDir, image: opts.image, args: qemuArgs(spec) },
      {
        launch: async (change) => {
          const p = await QemuProcess.start(applyLaunchChange(spec, change));
          procs.push(p);
          return p;
        },
        alive: (p) => p.running,
        stop: async (p) => void (await p.stop()),
        waitForSsh: async (p, deadline) => {
          const stopped = new AbortController();
          void p.exited.then(() => stopped.abort());
          await waitForBanner('127.0.0.1', port, deadline, stopped.signal);
        },
        exitText: async (p) => (await p.exited).stderr,
        log: (l) => log.push(l),
      },
      { bootTimeoutMs: 240_000 },
    );
    session = await SshSession.connect(
      sshTarget({ port, ssh: defaultSettings(tempDir).ssh, deadline: Date.now() + 60_000, reporter: silentReporter, cloudInit: false }),
    );
    const s = session;
    const fixups = await afterConnect(
      result,
      async (cmd) => {
        const r = await s.exec(cmd);
        return { code: r.code, stdout: r.stdout.toString() };
      },
      (l) => log.push(l),
    );
    const vm: WarmVm = {
      result,
      session,
      fixups,
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
