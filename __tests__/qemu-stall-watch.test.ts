// The stall watch on its own (no VM): a console file that keeps growing is
// never a stall; one that stops growing is, once the window has passed.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BootStalled, watchStall } from '../src/drivers/qemu/stall.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-stall-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchStall', () => {
  it('a console that keeps growing is not a stall, however long it lasts', async () => {
    const file = path.join(dir, 'growing.log');
    writeFileSync(file, '');
    const w = watchStall(file, 1000);
    try {
      for (let i = 0; i < 12; i++) {
        appendFileSync(file, `line ${i}\n`);
        await sleep(300);
      }
      expect(w.signal.aborted).toBe(false);
    } finally {
      w.stop();
    }
  });

  it('a console that stops growing aborts with BootStalled, saying how much it had written', async () => {
    const file = path.join(dir, 'stops.log');
    writeFileSync(file, 'booting...\n');
    const w = watchStall(file, 1000);
    try {
      await new Promise<void>((resolve) => w.signal.addEventListener('abort', () => resolve(), { once: true }));
      const reason = w.signal.reason as BootStalled;
      expect(reason).toBeInstanceOf(BootStalled);
      expect(reason.consoleBytes).toBe(11);
      expect(reason.message).toBe('no new serial console output and no SSH banner for 1s');
    } finally {
      w.stop();
    }
  });

  it('a kernel panic on the console is a stall at once, however busy QEMU is and however long the window', async () => {
    const file = path.join(dir, 'panic.log');
    writeFileSync(file, '[    6.2] Oops: int3: 0000 [#2] PREEMPT SMP NOPTI\n');
    // A busy process stands in for a QEMU whose vCPU spins in the panic loop.
    const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    const w = watchStall(file, 60_000, busy.pid);
    try {
      await sleep(600);
      expect(w.signal.aborted).toBe(false);
      appendFileSync(file, '[    6.3] Kernel panic - not syncing: Fatal exception in interrupt\n[    9.0] Shutting down cpus with NMI\n');
      await new Promise<void>((resolve) => w.signal.addEventListener('abort', () => resolve(), { once: true }));
      const reason = w.signal.reason as BootStalled;
      expect(reason).toBeInstanceOf(BootStalled);
      expect(reason.message).toBe('the guest kernel panicked (Kernel panic - not syncing: Fatal exception in interrupt)');
    } finally {
      w.stop();
      busy.kill('SIGKILL');
    }
  });

  it('no console file at all is a stall too (QEMU frozen before it opened it)', async () => {
    const w = watchStall(path.join(dir, 'never-created.log'), 500);
    try {
      await new Promise<void>((resolve) => w.signal.addEventListener('abort', () => resolve(), { once: true }));
      expect((w.signal.reason as Error).message).toBe('no serial console output at all and no SSH banner within 0.5s');
    } finally {
      w.stop();
    }
  });

  it('before the first console output, a QEMU that uses CPU is booting: stalled only after three windows', async () => {
    const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    try {
      const w = watchStall(path.join(dir, 'busy-never-created.log'), 1000, hog.pid);
      const reason = await new Promise<BootStalled>((resolve) =>
        w.signal.addEventListener('abort', () => resolve(w.signal.reason as BootStalled), { once: true }),
      );
      expect(reason.idle).toBe(false);
      expect(reason.message).toBe('no serial console output at all and no SSH banner within 3s');
    } finally {
      hog.kill('SIGKILL');
    }
  });

  it('before the first console output, a stopped QEMU (no CPU time) is stalled after one window', async () => {
    const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    hog.kill('SIGSTOP');
    try {
      const w = watchStall(path.join(dir, 'stopped-never-created.log'), 1000, hog.pid);
      const reason = await new Promise<BootStalled>((resolve) =>
        w.signal.addEventListener('abort', () => resolve(w.signal.reason as BootStalled), { once: true }),
      );
      expect(reason.idle).toBe(true);
      expect(reason.message).toBe('QEMU used no CPU time and the guest gave no serial console output and no SSH banner for 1s');
    } finally {
      hog.kill('SIGKILL');
    }
  });

  it('after console output too, a busy QEMU that goes quiet is booting (a systemd image before sshd): stalled only after three windows', async () => {
    const file = path.join(dir, 'quiet-busy.log');
    writeFileSync(file, 'generators done\n');
    const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    try {
      const w = watchStall(file, 1000, hog.pid);
      const reason = await new Promise<BootStalled>((resolve) =>
        w.signal.addEventListener('abort', () => resolve(w.signal.reason as BootStalled), { once: true }),
      );
      expect(reason.idle).toBe(false);
      expect(reason.message).toBe('no new serial console output and no SSH banner for 3s');
    } finally {
      hog.kill('SIGKILL');
    }
  });

  it('after console output, a stopped QEMU is stalled after one window', async () => {
    const file = path.join(dir, 'quiet-stopped.log');
    writeFileSync(file, 'generators done\n');
    const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    hog.kill('SIGSTOP');
    try {
      const w = watchStall(file, 1000, hog.pid);
      const reason = await new Promise<BootStalled>((resolve) =>
        w.signal.addEventListener('abort', () => resolve(w.signal.reason as BootStalled), { once: true }),
      );
      expect(reason.idle).toBe(true);
      expect(reason.message).toBe('QEMU used no CPU time and the guest gave no new serial console output and no SSH banner for 1s');
    } finally {
      hog.kill('SIGKILL');
    }
  });

  it('stop() ends the watch: no abort afterwards', async () => {
    const file = path.join(dir, 'stopped.log');
    writeFileSync(file, 'x');
    const w = watchStall(file, 300);
    w.stop();
    await sleep(800);
    expect(w.signal.aborted).toBe(false);
  });
});

describe('stall flags', () => {
  const manifest = path.join(dir, 'flags.yml');
  writeFileSync(
    manifest,
    ['driver:', '  type: qemu', '  image: debian/stable', 'stages:', '- s', 'jobs:', '- stage: s', '  commands:', '  - echo hi', ''].join(
      '\n',
    ),
  );

  it('-boot-retries refuses a value that is not a whole number, naming the flag', async () => {
    const r = await runCli(['-boot-retries', 'twice', '-manifest', manifest]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/-boot-retries.*expected a whole number \(0 or more\), found "twice"/s);
  });

  it('-boot-stall refuses something that is not a duration', async () => {
    const r = await runCli(['-boot-stall', 'soon', '-manifest', manifest]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/-boot-stall.*invalid duration "soon"/s);
  });
});
