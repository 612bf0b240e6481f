// `npm run bench -- boot [--rounds N]`: time from start to QEMU running, SSH
// banner, authenticated and the first job's first output line, for our
// builder's `fast` test image under the accelerator available here; against
// the same image booted by a plain shell script (qemu with Djinn's command
// line + an OpenSSH `ssh` polling loop), measured in the same run, rounds
// alternating. Goal (issue 4): our time to first job output <= 1.0x baseline.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobExecution } from '../src/core/job.js';
import { accelArgs, checkKvm } from '../src/drivers/qemu/accel.js';
import { freePort } from '../src/drivers/qemu/launch.js';
import { QemuDriver } from '../src/drivers/qemu/qemu-driver.js';
import { testSettings } from '../__tests__/helpers/settings.js';
import { silentReporter } from '../src/core/reporter.js';
import { jobScript } from '../src/runner/script.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CPUS = Math.min(2, os.availableParallelism());
const MEMORY = 2048;
/** A boot that takes longer is a hung guest (seen rarely under TCG): the round is dropped and run again. */
const HUNG_MS = 120_000;

class HungBoot extends Error {}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function disksFolder(): string {
  if (process.env.DJINN_TEST_DISKS) return process.env.DJINN_TEST_DISKS;
  return execFileSync(path.join(ROOT, 'scripts', 'test-image.sh'), { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim();
}

interface Sample {
  qemu: number;
  banner?: number;
  login?: number;
  firstOutput: number;
}

async function ours(disks: string, kvm: boolean): Promise<Sample> {
  const tempDir = mkdtempSync(path.join(os.tmpdir(), 'djinn-bench-boot-'));
  const driver = new QemuDriver(
    testSettings(tempDir, {
      qemu: { disks, cpus: CPUS, memoryMiB: MEMORY, kvm: kvm ? 'auto' : 'off', bootTimeoutMs: HUNG_MS },
      image: { build: 'never' },
    }),
    'debian/stable',
  );
  try {
    const t0 = performance.now();
    try {
      await driver.create({ reporter: silentReporter, env: [], signal: new AbortController().signal });
    } catch (err) {
      throw /Timed out/.test((err as Error).message) ? new HungBoot('our boot hung') : err;
    }
    const job: JobExecution = { stage: 'bench', name: 'first', scriptName: 'first.sh', script: jobScript(['echo first-line']), env: [] };
    let first = 0;
    const res = await driver.execute(job, { write: () => (first ||= performance.now()) }, new AbortController().signal);
    if (res.exitCode !== 0) throw new Error(`bench job failed: ${res.error ?? res.exitCode}`);
    const f = driver.facts();
    // facts are measured from create()'s start, which is t0 give or take a microtask.
    return { qemu: Number(f.qemuRunningMs), banner: Number(f.sshBannerMs), login: Number(f.sshLoginMs), firstOutput: first - t0 };
  } finally {
    await driver.destroy();
    rmSync(tempDir, { recursive: true, force: true });
  }
}

/** The plain shell script a user might write: Djinn's qemu command line, then ssh until it answers. */
const BASELINE = `
set -u
IMG=$1 PORT=$2 PID=$3 ACCEL=$4 CPUS=$5 MEM=$6
qemu-system-x86_64 $ACCEL -daemonize -display none -pidfile "$PID" -smp "$CPUS" -m "$MEM" \\
  -net nic,model=virtio -net user,hostfwd=tcp:127.0.0.1:$PORT-:22 \\
  -drive file="$IMG",media=disk,snapshot=on,if=virtio || exit 1
echo qemu-running
until ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 \\
  -p "$PORT" root@127.0.0.1 'echo first-line' 2>/dev/null; do sleep 0.2; done
kill "$(cat "$PID")"
`;

async function baseline(disks: string, kvm: boolean): Promise<Sample> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-bench-boot-'));
  const pidFile = path.join(dir, 'qemu.pid');
  const image = path.join(disks, 'qemu', 'x86_64', 'debian', 'stable');
  // The driver's own accelerator choice (one TCG thread: docs/qemu.md), so the ratio compares like with like.
  const accel = kvm ? '-enable-kvm' : `-accel ${accelArgs('tcg', CPUS)[1]}`;
  try {
    const t0 = performance.now();
    const child = spawn(
      'bash',
      ['-c', BASELINE, 'baseline', image, String(await freePort()), pidFile, accel, String(CPUS), String(MEMORY)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const s: Partial<Sample> = {};
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!s.qemu && out.includes('qemu-running')) s.qemu = performance.now() - t0;
      if (!s.firstOutput && out.includes('first-line')) s.firstOutput = performance.now() - t0;
    });
    const hung = setTimeout(() => child.kill('SIGKILL'), HUNG_MS);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    clearTimeout(hung);
    if (!s.firstOutput && code === null) throw new HungBoot('the baseline boot hung');
    if (code !== 0 || !s.firstOutput) throw new Error(`baseline script failed (exit ${code})`);
    return s as Sample;
  } finally {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // already stopped by the script
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const i = args.indexOf('--rounds');
  const rounds = i >= 0 ? Number(args[i + 1]) : 3;
  const disks = disksFolder();
  const kvm = (await checkKvm()).usable;
  process.stdout.write(
    `boot benchmark: fast image, ${kvm ? 'KVM (auto)' : 'TCG (KVM not usable here)'}, -smp ${CPUS} -m ${MEMORY}, ${rounds} rounds\n`,
  );
  const a: Sample[] = [];
  const b: Sample[] = [];
  let hungBoots = 0;
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so that machine load drifts hit both sides alike.
    try {
      const [x, y] =
        r % 2 === 0 ? [await ours(disks, kvm), await baseline(disks, kvm)] : [await baseline(disks, kvm), await ours(disks, kvm)].reverse();
      a.push(x);
      b.push(y);
    } catch (err) {
      if (!(err instanceof HungBoot) || ++hungBoots > 3) throw err;
      process.stdout.write(`  round ${r + 1}: ${err.message} (no banner in ${HUNG_MS / 1000}s); running the round again\n`);
      r--;
      continue;
    }
    const l = (s: Sample) => `${(s.firstOutput / 1000).toFixed(2)}s`;
    process.stdout.write(`  round ${r + 1}: ours ${l(a[r])}, baseline ${l(b[r])}\n`);
  }
  if (hungBoots) process.stdout.write(`  (${hungBoots} hung guest boot(s) dropped)\n`);
  const sec = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)}s` : '-');
  const m = (xs: Sample[], k: keyof Sample) => median(xs.map((s) => s[k] ?? NaN).filter((v) => Number.isFinite(v)));
  process.stdout.write('\nmedian seconds from start     ours    baseline (shell + ssh polling)\n');
  for (const [label, k] of [
    ['QEMU running', 'qemu'],
    ['SSH banner', 'banner'],
    ['authenticated', 'login'],
    ['first job output line', 'firstOutput'],
  ] as const) {
    process.stdout.write(`  ${label.padEnd(26)} ${sec(m(a, k)).padStart(7)}  ${sec(m(b, k)).padStart(7)}\n`);
  }
  const ratio = m(a, 'firstOutput') / m(b, 'firstOutput');
  process.stdout.write(`\ntime to first job output: ${ratio.toFixed(2)}x baseline (goal <= 1.00x): ${ratio <= 1 ? 'met' : 'NOT met'}\n`);
}
