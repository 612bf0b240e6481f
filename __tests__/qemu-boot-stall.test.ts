// Stalled boots (issue 14), with real QEMU and our test image: a QEMU frozen
// with SIGSTOP right after it starts looks exactly like a hung boot from
// outside (no console output, no SSH banner). The driver must notice it within
// the stall window, kill it and boot again; a boot that is slow but keeps
// printing must be left alone.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobExecution } from '../src/core/job.js';
import { QemuDriver } from '../src/drivers/qemu/qemu-driver.js';
import { merged, testSettings, type SettingsChanges } from './helpers/settings.js';
import type { Reporter } from '../src/core/reporter.js';
import { jobScript } from '../src/runner/script.js';
import { startCli, type CliResult, projectArgs } from './helpers/cli.js';
import { alive, qemuChildren, testDisks, testImage, waitUntil } from './helpers/vm.js';

const VM_TEST_MS = 300_000;
let work: string;
let disks: string;
const started: number[] = [];

beforeAll(() => {
  disks = testDisks();
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-stall-test-'));
});

afterAll(() => {
  for (const pid of started) {
    if (!alive(pid)) continue;
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
});

function collecting(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    jobStart() {},
    jobOutput() {},
    jobEnd() {},
    buildEnd() {},
  };
}

function driver(name: string, extra: SettingsChanges): QemuDriver {
  const tempDir = path.join(work, name);
  mkdirSync(tempDir, { recursive: true });
  // No cacheDir: warm starts off, every boot is a cold one.
  const base = { qemu: { disks, memoryMiB: 1024 }, image: { build: 'never' as const } };
  return new QemuDriver(testSettings(tempDir, merged(base, extra)), 'debian/stable');
}

/** Runs one shell command in the machine as a job; returns its exit code and output. */
async function runJob(d: QemuDriver, command: string): Promise<{ code: number | null; out: string }> {
  const job: JobExecution = { stage: 's', name: 'j', scriptName: 'j.sh', script: jobScript([command]), env: [] };
  let out = '';
  const r = await d.execute(job, { write: (c: Buffer) => void (out += c.toString()) }, new AbortController().signal);
  return { code: r.exitCode, out };
}

/** Freezes the first QEMU the driver starts, as soon as it is started. */
function freezeFirst(d: QemuDriver, until: Promise<unknown>): Promise<number | undefined> {
  return (async () => {
    let settled = false;
    void until.finally(() => (settled = true));
    while (!settled) {
      const pid = d.process?.pid;
      if (pid) {
        process.kill(pid, 'SIGSTOP');
        started.push(pid);
        return pid;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return undefined;
  })();
}

/** True once the machine has written to its serial console. */
function consoleStarted(d: QemuDriver): boolean {
  const log = d.process?.spec.consoleLog;
  try {
    return !!log && statSync(log).size > 0;
  } catch {
    return false;
  }
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('qemu driver: stalled boots', () => {
  it(
    'a QEMU frozen right after it starts is noticed, killed and booted again; the job runs on the second boot',
    async () => {
      const d = driver('frozen', {});
      const reporter = collecting();
      try {
        const creating = d.create({ reporter, env: [], signal: new AbortController().signal });
        const frozen = await freezeFirst(d, creating);
        await creating;
        expect(frozen).toBeDefined();
        const facts = d.facts();
        expect(facts.bootStalls).toBe(1);
        expect(facts.bootRetries).toBe(1);
        expect(String(facts.bootStallReason)).toMatch(
          /QEMU used no CPU time and the guest gave no serial console output and no SSH banner for (20s|10s)/,
        );
        const warning = reporter.lines.find((l) => l.includes('stalled while booting'));
        expect(warning, reporter.lines.join('\n')).toContain(`killed QEMU (pid ${frozen})`);
        // The frozen QEMU is gone (SIGKILL works on a stopped process); a new one runs the build.
        expect(alive(frozen!)).toBe(false);
        expect(d.process?.pid).not.toBe(frozen);
        const r = await runJob(d, 'echo "second boot says $(cat /etc/hostname)"');
        expect(r.code).toBe(0);
        expect(r.out).toMatch(/second boot says \S+/);
      } finally {
        await d.destroy();
      }
    },
    VM_TEST_MS,
  );

  it(
    'a boot that is slow but keeps printing to its console is not retried',
    async () => {
      // The test image with a chatty kernel (no `quiet`, every initcall printed), so that the console
      // keeps growing, on a host that runs QEMU only half the time (SIGSTOP/SIGCONT every 0.5 s, from
      // its first console line on: firmware and boot loader print nothing): a boot longer than the
      // 10 s stall window, whose console is never quiet that long.
      const raw = path.join(work, 'chatty.raw');
      execFileSync('qemu-img', ['convert', '-O', 'raw', testImage(), raw]);
      const cfg = path.join(work, 'syslinux.cfg');
      const fat = `${raw}@@1M`;
      const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
      execFileSync('mcopy', ['-o', '-i', fat, '::/syslinux.cfg', cfg], { env });
      const before = readFileSync(cfg, 'utf8');
      expect(before).toContain(' quiet');
      writeFileSync(cfg, before.replace(' quiet', ' ignore_loglevel initcall_debug'));
      execFileSync('mcopy', ['-o', '-i', fat, cfg, '::/syslinux.cfg'], { env });
      const d = driver('slow', { image: { file: raw, format: 'raw' }, qemu: { bootStallMs: 10_000, cpus: 1 } });
      const reporter = collecting();
      let stopThrottle = false;
      try {
        const creating = d.create({ reporter, env: [], signal: new AbortController().signal });
        const throttle = (async () => {
          let stopped = false;
          while (!stopThrottle) {
            const pid = d.process?.pid;
            if (pid && alive(pid) && consoleStarted(d)) {
              process.kill(pid, stopped ? 'SIGCONT' : 'SIGSTOP');
              stopped = !stopped;
            }
            await new Promise((r) => setTimeout(r, 500));
          }
          const pid = d.process?.pid;
          if (pid && alive(pid) && stopped) process.kill(pid, 'SIGCONT');
        })();
        try {
          await creating;
        } finally {
          stopThrottle = true;
          await throttle;
        }
        const facts = d.facts();
        expect(facts.bootStalls, reporter.lines.join('\n')).toBeUndefined();
        expect(facts.bootRetries).toBeUndefined();
        expect(reporter.lines.join('\n')).not.toContain('stalled');
        // The premise of this test, not a speed check: the boot outlasted the stall window, so
        // only the console output kept it from counting as stalled.
        expect(Number(facts.bootSeconds)).toBeGreaterThan(10);
        const r = await runJob(d, 'echo slow-but-alive');
        expect(r.code).toBe(0);
        expect(r.out).toContain('slow-but-alive');
      } finally {
        await d.destroy();
        rmSync(raw, { force: true });
      }
    },
    // A raw copy of the image and a boot made slow on purpose (~3.5 min here under TCG).
    2 * VM_TEST_MS,
  );

  it(
    "with -boot-retries 0 a frozen boot fails at once with the stall's reason, not the boot timeout; nothing is left running",
    async () => {
      const dir = path.join(work, 'cli');
      mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
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
          '  - echo never-runs',
          '',
        ].join('\n'),
      );
      writeFileSync(path.join(dir, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory 1024\n}\n`);
      const run = startCli([
        ...projectArgs(dir, { cacheDir: path.join(work, 'cache') }),
        '-image-build',
        'never',
        '-warm',
        'off',
        '-boot-retries',
        '0',
        '-boot-stall',
        '8s',
        '-boot-timeout',
        '5m',
      ]);
      let exited = false;
      void run.done.then(() => (exited = true));
      const pids: number[] = [];
      await waitUntil(() => (pids.push(...qemuChildren(run.child.pid!)), pids.length > 0 || exited), 120_000);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      started.push(...pids);
      const r = await run.done;
      expect(r.code, show(r)).toBe(1);
      const all = r.stdout + r.stderr;
      expect(all).toContain(
        'it stalled (QEMU used no CPU time and the guest gave no serial console output and no SSH banner for 8s; see ' +
          '-boot-stall) and booting again is off (-boot-retries 0)',
      );
      expect(all).toContain("The machine's serial console is empty.");
      expect(all).not.toContain('Timed out');
      expect(all).not.toContain('never-runs');
      expect(pids.length).toBe(1);
      expect(await waitUntil(() => !alive(pids[0]), 10_000)).toBe(true);
    },
    VM_TEST_MS,
  );
});
