// `npm run bench -- warm [--rounds N] [--memory MiB] [--cpus N] [--cli]`
// Cold boot vs restore of a saved state, measured in the same run, alternating
// so that host noise hits both alike: seconds from launching QEMU to the first
// output line of a job, the ratio restore/cold, the one-time save cost and the
// state's size. Uses the test image (scripts/test-image.sh) and the same
// sequence as the qemu driver (launch API, runWarmSequence, SSH transport, fix-ups);
// with --cli, whole builds through dist/cli.js instead (run `npm run build` first),
// timed from spawning the CLI to the job's first output line.
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { keyDigest, type StateKey } from '../src/drivers/qemu/warm/key.js';
import type { StateManifest } from '../src/drivers/qemu/warm/store.js';
import { startWarmVm, stopAllWarmVms, testImage, type WarmVmOptions } from '../__tests__/helpers/warm-vm.js';
import { CLI, startCli } from '../__tests__/helpers/cli.js';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds from launch until the first output line of a job (`echo`) comes back. */
async function timeToFirstOutput(opts: WarmVmOptions): Promise<{ seconds: number; start: string; key?: StateKey; savedSeconds?: number }> {
  const t0 = Date.now();
  const vm = await startWarmVm(opts);
  try {
    const r = await vm.session.exec('echo first-output-line');
    if (!r.stdout.toString().includes('first-output-line')) throw new Error('the job printed nothing');
    const seconds = (Date.now() - t0) / 1000;
    return { seconds, start: vm.result.start, key: vm.result.stateKey, savedSeconds: vm.result.savedSeconds };
  } finally {
    await vm.stop();
  }
}

/** One whole build through the CLI: seconds from spawn to the job's first output line, and how the machine started. */
async function cliBuild(dir: string, cacheDir: string, warm: string): Promise<{ seconds: number; start: string }> {
  const t0 = Date.now();
  const run = startCli([
    '-manifest',
    path.join(dir, '.djinn.yml'),
    '-driver',
    path.join(dir, 'driver.conf'),
    '-artifacts',
    dir,
    '-objects',
    dir,
    '-cache-dir',
    cacheDir,
    '-image-build',
    'never',
    '-warm',
    warm,
  ]);
  try {
    await run.waitFor(/first-output-line/, 300_000);
    const seconds = (Date.now() - t0) / 1000;
    const r = await run.done;
    if (r.code !== 0) throw new Error(`build failed:\n${r.stdout}\n${r.stderr}`);
    return { seconds, start: /Machine restored in/.test(r.stdout) ? 'restored' : 'booted' };
  } finally {
    if (run.child.exitCode === null) run.child.kill('SIGTERM');
  }
}

async function runCliBench(rounds: number, memoryMiB: number, cpus: number, image: { path: string }): Promise<void> {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-warm-cli-'));
  try {
    const disks = path.resolve(image.path, '..', '..', '..', '..');
    await fs.writeFile(
      path.join(work, '.djinn.yml'),
      'driver:\n  type: qemu\n  image: debian/stable\nstages:\n- main\njobs:\n- stage: main\n  commands:\n  - echo first-output-line\n',
    );
    await fs.writeFile(path.join(work, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory ${memoryMiB}\n  cpus ${cpus}\n}\n`);
    const cacheDir = path.join(work, 'cache');
    process.stdout.write(`warm start bench through the CLI: -m ${memoryMiB} -smp ${cpus}, ${rounds} rounds\n`);
    const first = await cliBuild(work, cacheDir, 'on');
    if (first.start !== 'booted') throw new Error('the first build should boot and save');
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < rounds; i++) {
      cold.push((await cliBuild(work, cacheDir, 'off')).seconds);
      const w = await cliBuild(work, cacheDir, 'on');
      if (w.start !== 'restored') throw new Error(`round ${i + 1}: expected a restore`);
      warm.push(w.seconds);
      process.stdout.write(`  round ${i + 1}: cold ${cold[i]!.toFixed(2)} s, restore ${w.seconds.toFixed(2)} s\n`);
    }
    process.stdout.write(`CLI start → first job output, cold (median)     ${median(cold).toFixed(2)} s\n`);
    process.stdout.write(`CLI start → first job output, restore (median)  ${median(warm).toFixed(2)} s\n`);
    process.stdout.write(`restore / cold                                  ${(median(warm) / median(cold)).toFixed(2)}×\n`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const rounds = flag(args, 'rounds', 3);
  const memoryMiB = flag(args, 'memory', 1024);
  const cpus = flag(args, 'cpus', 1);
  const image = testImage();
  if (args.includes('--cli')) return runCliBench(rounds, memoryMiB, cpus, image);
  const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-warm-'));
  try {
    const base = { image, cacheDir, memoryMiB, cpus };
    process.stdout.write(`warm start bench: ${path.basename(image.path)}, TCG, -m ${memoryMiB} -smp ${cpus}, ${rounds} rounds\n`);
    const first = await timeToFirstOutput({ ...base, mode: 'on' });
    if (first.start !== 'booted' || !first.key) throw new Error('the first start should boot and save');
    const dir = path.join(cacheDir, 'warm', keyDigest(first.key));
    const { generation } = JSON.parse(await fs.readFile(path.join(dir, 'current'), 'utf8')) as { generation: string };
    const manifest = JSON.parse(await fs.readFile(path.join(dir, generation, 'manifest.json'), 'utf8')) as StateManifest;

    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const c = await timeToFirstOutput({ ...base, mode: 'off' });
      cold.push(c.seconds);
      const w = await timeToFirstOutput({ ...base, mode: 'on' });
      if (w.start !== 'restored') throw new Error(`round ${i + 1}: expected a restore, got ${w.start}`);
      warm.push(w.seconds);
      process.stdout.write(`  round ${i + 1}: cold ${c.seconds.toFixed(2)} s, restore ${w.seconds.toFixed(2)} s\n`);
    }
    const mc = median(cold);
    const mw = median(warm);
    const rows: [string, string][] = [
      ['cold boot → first job output (median)', `${mc.toFixed(2)} s`],
      ['restore → first job output (median)', `${mw.toFixed(2)} s`],
      ['restore / cold', `${(mw / mc).toFixed(2)}×`],
      ['first build: boot + save', `${first.seconds.toFixed(2)} s (save ${first.savedSeconds?.toFixed(2) ?? '?'} s)`],
      ['state file', `${(manifest.state.bytes / 1e6).toFixed(1)} MB`],
      ['saved overlay', `${(manifest.overlay.bytes / 1e6).toFixed(1)} MB`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  } finally {
    await stopAllWarmVms();
    await fs.rm(cacheDir, { recursive: true, force: true });
  }
}
