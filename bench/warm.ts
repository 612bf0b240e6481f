// `npm run bench -- warm [--rounds N] [--memory MiB] [--cpus N]`
// Cold boot vs restore of a saved state, measured in the same run, alternating
// so that host noise hits both alike: seconds from launching QEMU to the first
// output line of a job, the ratio restore/cold, the one-time save cost and the
// state's size. Uses the test image (scripts/test-image.sh) and the same
// sequence as the qemu driver (launch API, warmBoot, SSH transport, fix-ups).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { keyDigest, type StateKey } from '../src/drivers/qemu/warm/key.js';
import type { StateManifest } from '../src/drivers/qemu/warm/store.js';
import { startWarmVm, stopAllWarmVms, testImage, type WarmVmOptions } from '../__tests__/helpers/warm-vm.js';

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

export async function run(args: string[]): Promise<void> {
  const rounds = flag(args, 'rounds', 3);
  const memoryMiB = flag(args, 'memory', 1024);
  const cpus = flag(args, 'cpus', 1);
  const image = testImage();
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
