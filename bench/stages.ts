// `npm run bench -- stages [--memory MiB] [--cpus N]`
// Stage states on the quick-start example (examples/hello, whose `deps` stage
// installs gcc with apt-get) through dist/cli.js (run `npm run build` first):
// three builds in one run on one cache folder,
//   1. first: `-cache-stage deps` (runs deps, saves the machine after it),
//   2. second: `-cache-stage deps` (starts from the saved deps state),
//   3. the second without stage caching (warm start only: runs deps again),
// and prints the wall time of each and the ratio second / warm-start-only.
// Uses the test image (scripts/test-image.sh); the guest needs Debian's mirror.
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI, ROOT, runCli } from '../__tests__/helpers/cli.js';
import { testImage } from '../__tests__/helpers/warm-vm.js';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

export async function run(args: string[]): Promise<void> {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  const memoryMiB = flag(args, 'memory', 1024);
  const cpus = flag(args, 'cpus', 1);
  const disks = path.resolve(testImage().path, '..', '..', '..', '..');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-stages-'));
  try {
    const example = path.join(ROOT, 'examples', 'hello');
    await fs.writeFile(path.join(work, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory ${memoryMiB}\n  cpus ${cpus}\n}\n`);
    const cacheDir = path.join(work, 'cache');
    const build = async (label: string, ...extra: string[]) => {
      const artifacts = path.join(work, `artifacts-${label}`);
      const t0 = Date.now();
      const r = await runCli([
        '-manifest',
        path.join(example, '.djinn.yml'),
        '-driver',
        path.join(work, 'driver.conf'),
        '-objects',
        example,
        '-artifacts',
        artifacts,
        '-cache-dir',
        cacheDir,
        '-image-build',
        'never',
        ...extra,
      ]);
      const seconds = (Date.now() - t0) / 1000;
      if (r.code !== 0) throw new Error(`${label} build failed:\n${r.stdout}\n${r.stderr}`);
      if (!existsSync(path.join(artifacts, 'bin', 'hello'))) throw new Error(`${label} build: no bin/hello artifact`);
      const deps = /^deps\s+toolchain\s+(\S+)/m.exec(r.stdout)?.[1] ?? '?';
      process.stdout.write(`  ${label.padEnd(28)} ${seconds.toFixed(1).padStart(6)} s   deps ${deps}\n`);
      return { seconds, deps };
    };
    process.stdout.write(`stage states bench: examples/hello, -cache-stage deps, TCG, -m ${memoryMiB} -smp ${cpus}\n`);
    const first = await build('first (saves deps)', '-cache-stage', 'deps');
    const second = await build('second (-cache-stage deps)', '-cache-stage', 'deps');
    const plain = await build('second, no stage caching');
    if (first.deps !== 'passed' || second.deps !== 'cached' || plain.deps !== 'passed')
      throw new Error(`expected deps passed / cached / passed, got ${first.deps} / ${second.deps} / ${plain.deps}`);
    process.stdout.write(`second run (deps cached)                 ${second.seconds.toFixed(1)} s\n`);
    process.stdout.write(`second / second without stage caching    ${(second.seconds / plain.seconds).toFixed(3)}×\n`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
