// `npm run bench -- boot-hangs [--variant NAME] [--boots N] [--hang S] [--out FILE]`:
// boots the `fast` test image N times in a row (QEMU with the driver's own
// command line, changed by one suspect of issue 14) and counts the boots
// whose SSH banner does not come within --hang seconds. Not a test: run it
// under `flock /work/vm.lock` in batches of <= 10 boots (see
// scripts/boot-hangs.sh, which loops over batches and variants).
//
// Per boot it records one JSON line in --out: the variant, whether it hung,
// seconds to the first console byte and to the banner, the longest console
// silence before the banner (what a stall window must exceed), the host's load
// average. For a hung boot it also keeps the console and QEMU's own view
// (QMP query-status, `info cpus`, `info registers` twice 3 s apart, the QEMU
// threads' CPU time over those 3 s) next to the --out file.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, qemuArgs, type LaunchSpec } from '../src/drivers/qemu/launch.js';
import { QmpClient } from '../src/drivers/qemu/warm/qmp.js';
import { waitForBanner } from '../src/transport/ssh/banner.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Each suspect as a change to the driver's launch (default: the driver's own command line). */
const VARIANTS: Record<
  string,
  { about: string; cpus?: number; extra?: string[]; accel?: string[]; probeMs?: number; load?: number; patient?: boolean }
> = {
  default: { about: "the driver's command line: -smp 2, tcg,thread=multi, machine pc, a 1.5 s banner probe every 1 s" },
  rng: { about: '+ -device virtio-rng-pci (entropy for the guest)', extra: ['-device', 'virtio-rng-pci'] },
  smp1: { about: '-smp 1 (single vCPU, no MTTCG)', cpus: 1 },
  single: { about: '-smp 2 with -accel tcg,thread=single (round-robin TCG)', accel: ['-accel', 'tcg,thread=single'] },
  q35: { about: '-machine q35 instead of pc (i440fx)', extra: ['-machine', 'q35'] },
  probe: { about: 'banner probe every 100 ms (aggressive polling, like an ssh loop)', probeMs: 100 },
  // The fix for the livelock the default variant shows: one probe at a time waits longer each time.
  patient: {
    about: "the driver's command line, probed by the transport's waitForBanner (quick probes plus one patient one)",
    patient: true,
  },
  // The MTTCG suspect behind the kernel panics, with the fixed (patient) probing.
  'single-patient': {
    about: "-accel tcg,thread=single, probed by the transport's waitForBanner",
    accel: ['-accel', 'tcg,thread=single'],
    patient: true,
  },
  'smp1-patient': { about: "-smp 1, probed by the transport's waitForBanner", cpus: 1, patient: true },
  noprobe: { about: 'no banner probing until the console says sshd is listening', probeMs: -1 },
  load: { about: 'two busy host processes (CPU hogs) while booting', load: 2 },
  'load-patient': { about: "two CPU hogs while booting, probed by the transport's waitForBanner", load: 2, patient: true },
  // "After": not a raw QEMU but the product, so the stall watch and the retry are in the loop.
  driver: { about: "a whole build through dist/cli.js (the driver's stall watch and one retry), warm starts off" },
};

interface BootRecord {
  variant: string;
  /** driver variant: how many boots stalled and were retried, whether the build still passed. */
  stalls?: number;
  passed?: boolean;
  buildS?: number;
  boot: number;
  at: string;
  hung: boolean;
  loadavg: number[];
  firstConsoleS?: number;
  bannerS?: number;
  maxSilenceS: number;
  consoleBytes: number;
  diag?: string;
}

function disksFolder(): string {
  if (process.env.DJINN_TEST_DISKS) return process.env.DJINN_TEST_DISKS;
  return execFileSync(path.join(ROOT, 'scripts', 'test-image.sh'), { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim();
}

/** One banner probe: resolves true when the server's first bytes start with "SSH-". */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1500, () => done(false));
    sock.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('SSH-')));
    sock.once('error', () => done(false));
    sock.once('end', () => done(false));
  });
}

function consoleSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** utime+stime of every thread of a process, in clock ticks, by thread id. */
function threadTimes(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of execFileSync('ls', [`/proc/${pid}/task`])
      .toString()
      .split(/\s+/)
      .filter(Boolean)) {
      try {
        const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
        out[`${tid} ${comm}`] = Number(f[11]) + Number(f[12]);
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/** QEMU's own view of a hung guest, through QMP: status, vCPUs, registers, and whether they move. */
async function diagnose(qemu: Proc, qmpSocket: string): Promise<string> {
  const lines: string[] = [];
  try {
    const qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 5000, alive: () => qemu.running });
    const hmp = (cmd: string) => qmp.execute<string>('human-monitor-command', { 'command-line': cmd });
    try {
      lines.push(`query-status: ${JSON.stringify(await qmp.execute('query-status'))}`);
      const t1 = threadTimes(qemu.pid);
      lines.push('--- info cpus (t=0)', await hmp('info cpus'), '--- info registers (t=0)', await hmp('info registers -a'));
      await new Promise((r) => setTimeout(r, 3000));
      const t2 = threadTimes(qemu.pid);
      lines.push('--- info cpus (t=3s)', await hmp('info cpus'), '--- info registers (t=3s)', await hmp('info registers -a'));
      lines.push('--- CPU ticks used by each QEMU thread over those 3 s');
      for (const k of Object.keys(t2)) lines.push(`${k}: ${t2[k]! - (t1[k] ?? 0)}`);
    } finally {
      qmp.close();
    }
  } catch (err) {
    lines.push(`QMP failed: ${(err as Error).message}`);
  }
  return lines.join('\n');
}

async function bootOnce(disks: string, variantName: string, n: number, hangMs: number, outDir: string): Promise<BootRecord> {
  const v = VARIANTS[variantName]!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-hangs-'));
  const qmpSocket = path.join(dir, 'qmp.sock');
  const cpus = v.cpus ?? Math.min(2, os.availableParallelism());
  const spec: LaunchSpec = {
    image: path.join(disks, 'qemu', 'x86_64', 'debian', 'stable'),
    format: 'qcow2',
    cpus,
    memoryMiB: 1024,
    accel: 'tcg',
    // The variants keep measuring the multi-threaded TCG the driver used before -tcg-threads (single is `single-patient`).
    tcgThreads: 'multi',
    sshPort: await freePort(),
    consoleLog: path.join(dir, 'console.log'),
    pidFile: path.join(dir, 'qemu.pid'),
    extraArgs: ['-qmp', `unix:${qmpSocket},server=on,wait=off`, ...(v.extra ?? [])],
  };
  // Busy loops in the shell itself (no child processes), killed with the boot.
  const hogs = Array.from({ length: v.load ?? 0 }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  const rec: BootRecord = {
    variant: variantName,
    boot: n,
    at: new Date().toISOString(),
    hung: false,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    maxSilenceS: 0,
    consoleBytes: 0,
  };
  let qemu: Proc | undefined;
  try {
    const args = qemuArgs(spec);
    // The accelerator is the launch's first two arguments.
    if (v.accel) args.splice(0, 2, ...v.accel);
    qemu = await startQemu(args);
    const t0 = Date.now();
    let lastSize = 0;
    let lastChange = t0;
    let lastProbe = 0;
    const probeMs = v.probeMs ?? 1000;
    let patientBanner: number | undefined;
    if (v.patient) {
      waitForBanner('127.0.0.1', spec.sshPort, t0 + hangMs).then(
        () => (patientBanner = Date.now()),
        () => {},
      );
    }
    while (Date.now() - t0 < hangMs && qemu.running) {
      const size = consoleSize(spec.consoleLog);
      const now = Date.now();
      if (size !== lastSize) {
        if (lastSize === 0) rec.firstConsoleS = (now - t0) / 1000;
        rec.maxSilenceS = Math.max(rec.maxSilenceS, (now - lastChange) / 1000);
        lastSize = size;
        lastChange = now;
      }
      if (v.patient) {
        if (patientBanner !== undefined) {
          rec.bannerS = (patientBanner - t0) / 1000;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const sshdUp = probeMs >= 0 || (size > 0 && /Server listening|starting sshd/i.test(readFileSync(spec.consoleLog, 'latin1')));
      if (sshdUp && now - lastProbe >= (probeMs >= 0 ? probeMs : 500)) {
        lastProbe = now;
        if (await probe(spec.sshPort)) {
          rec.bannerS = (Date.now() - t0) / 1000;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    rec.maxSilenceS = Math.round(Math.max(rec.maxSilenceS, rec.bannerS === undefined ? (Date.now() - lastChange) / 1000 : 0) * 10) / 10;
    rec.consoleBytes = consoleSize(spec.consoleLog);
    if (rec.bannerS === undefined) {
      rec.hung = true;
      const base = path.join(outDir, `hung-${variantName}-${Date.now()}`);
      copyFileSync(spec.consoleLog, `${base}.console.log`);
      writeFileSync(
        `${base}.qemu.txt`,
        `${qemu.args.join(' ')}\nrunning: ${qemu.running}\nstderr: ${qemu.stderr}\n${qemu.running ? await diagnose(qemu, qmpSocket) : ''}\n`,
      );
      rec.diag = path.basename(base);
    }
  } finally {
    for (const hog of hogs) hog.kill('SIGKILL');
    if (qemu) await qemu.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rec;
}

/**
 * One build of a one-command manifest through the committed CLI: what a user
 * gets, with the stall watch and its retry. A build that fails or takes longer
 * than --hang counts as hung; the stalled boots it survived are counted apart.
 */
async function buildOnce(disks: string, n: number, hangMs: number, outDir: string): Promise<BootRecord> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-hangs-'));
  writeFileSync(
    path.join(dir, '.djinn.yml'),
    'driver:\n  type: qemu\n  image: debian/stable\nstages:\n  - test\njobs:\n  - stage: test\n    commands:\n      - uname -r\n',
  );
  const rec: BootRecord = {
    variant: 'driver',
    boot: n,
    at: new Date().toISOString(),
    hung: false,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    maxSilenceS: 0,
    consoleBytes: 0,
  };
  const t0 = Date.now();
  const args = [
    path.join(ROOT, 'dist', 'cli.js'),
    '-manifest',
    '.djinn.yml',
    '-disks',
    disks,
    '-memory',
    '1024',
    '-warm',
    'off',
    '-artifacts',
    'out',
  ];
  const child = spawn(process.execPath, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') },
  });
  let log = '';
  child.stdout.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const killer = setTimeout(() => child.kill('SIGINT'), hangMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(killer);
  rec.buildS = Math.round((Date.now() - t0) / 100) / 10;
  rec.passed = code === 0;
  rec.hung = !rec.passed;
  rec.stalls = (log.match(/stalled while booting/g) ?? []).length;
  if (rec.stalls || !rec.passed) {
    const base = path.join(outDir, `driver-${rec.passed ? 'retried' : 'failed'}-${Date.now()}`);
    writeFileSync(`${base}.log`, log);
    rec.diag = path.basename(base);
  }
  rmSync(dir, { recursive: true, force: true });
  return rec;
}

interface Proc {
  pid: number;
  args: string[];
  readonly running: boolean;
  readonly stderr: string;
  stop(): Promise<void>;
}

/** QEMU as our child, with a command line the variant changed (the driver's launch.ts cannot swap the accelerator). */
async function startQemu(args: string[]): Promise<Proc> {
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  let stderr = '';
  let done = false;
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      done = true;
      resolve();
    }),
  );
  return {
    pid: child.pid!,
    args: ['qemu-system-x86_64', ...args],
    get running() {
      return !done;
    },
    get stderr() {
      return stderr;
    },
    async stop() {
      if (!done) child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function run(args: string[]): Promise<void> {
  const get = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1]! : dflt;
  };
  const variant = get('variant', 'default');
  if (!VARIANTS[variant]) throw new Error(`no variant "${variant}"; variants: ${Object.keys(VARIANTS).join(', ')}`);
  const boots = Number(get('boots', '10'));
  const hangMs = Number(get('hang', variant === 'driver' ? '300' : '60')) * 1000;
  const out = path.resolve(get('out', path.join(os.tmpdir(), 'djinn-boot-hangs', 'boots.jsonl')));
  mkdirSync(path.dirname(out), { recursive: true });
  const disks = disksFolder();
  process.stdout.write(
    `boot-hangs: variant ${variant} (${VARIANTS[variant]!.about}), ${boots} boots, hung = no banner in ${hangMs / 1000}s\n`,
  );
  for (let n = 1; n <= boots; n++) {
    const rec =
      variant === 'driver'
        ? await buildOnce(disks, n, hangMs, path.dirname(out))
        : await bootOnce(disks, variant, n, hangMs, path.dirname(out));
    appendFileSync(out, JSON.stringify(rec) + '\n');
    const outcome = rec.hung
      ? `HUNG (${rec.diag})`
      : rec.buildS !== undefined
        ? `build ${rec.passed ? 'passed' : 'FAILED'} in ${rec.buildS}s, ${rec.stalls} stalled boot(s)`
        : `banner ${rec.bannerS!.toFixed(1)}s`;
    process.stdout.write(
      `  ${variant} #${n}: ${outcome}, first console ${rec.firstConsoleS?.toFixed(1) ?? '-'}s, ` +
        `longest silence ${rec.maxSilenceS}s, load ${rec.loadavg[0]}\n`,
    );
  }
  summarize(out);
}

/** Hang counts per variant over every boot recorded in `out`. */
function summarize(out: string): void {
  const recs = readFileSync(out, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as BootRecord);
  const by = new Map<string, BootRecord[]>();
  for (const r of recs) by.set(r.variant, [...(by.get(r.variant) ?? []), r]);
  process.stdout.write('\nvariant      boots  hung  rate   max silence before banner (ok boots)\n');
  for (const [name, rs] of by) {
    if (name === 'driver') {
      const stalled = rs.reduce((n, r) => n + (r.stalls ?? 0), 0);
      const failed = rs.filter((r) => !r.passed).length;
      process.stdout.write(
        `${name.padEnd(12)} ${String(rs.length).padStart(5)} builds: ${failed} failed ` +
          `(${((100 * failed) / rs.length).toFixed(1)}%), ${stalled} stalled boot(s) retried\n`,
      );
      continue;
    }
    const hung = rs.filter((r) => r.hung).length;
    const silence = Math.max(0, ...rs.filter((r) => !r.hung).map((r) => r.maxSilenceS));
    process.stdout.write(
      `${name.padEnd(12)} ${String(rs.length).padStart(5)} ${String(hung).padStart(5)}  ${((100 * hung) / rs.length).toFixed(1).padStart(4)}%  ${silence}s\n`,
    );
  }
}
