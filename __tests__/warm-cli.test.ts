// Warm starts through the bundled CLI and the qemu driver, with real VMs (TCG):
// the first build boots and saves, the next ones restore (alone and two at
// once), -warm off boots, and a damaged state falls back to a booted build.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliResult, projectArgs } from './helpers/cli.js';
import { alive, testDisks } from './helpers/vm.js';

let work: string;
let disks: string;
const pids: number[] = [];

beforeAll(() => {
  disks = testDisks();
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-warm-cli-'));
}, 900_000);

afterAll(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const MANIFEST = [
  'driver:',
  '  type: qemu',
  '  image: debian/stable',
  'stages:',
  '- main',
  'jobs:',
  '- stage: main',
  '  name: probe',
  '  commands:',
  '  - echo "uptime=$(cut -d" " -f1 /proc/uptime) now=$(date +%s)"',
  `  - echo "rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')"`,
  '',
].join('\n');

function project(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), MANIFEST);
  writeFileSync(path.join(dir, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory 1024\n  cpus 1\n}\n`);
  return dir;
}

/** Runs one build; returns its result and the wall seconds from the CLI's start to its end. */
async function build(name: string, ...extra: string[]): Promise<CliResult & { elapsed: number; startedAt: number }> {
  const dir = project(name);
  const startedAt = Date.now();
  const run = startCli([...projectArgs(dir, { cacheDir: path.join(work, 'cache') }), '-image-build', 'never', ...extra]);
  if (run.child.pid) pids.push(run.child.pid);
  const r = await run.done;
  return { ...r, elapsed: (Date.now() - startedAt) / 1000, startedAt };
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** The guest's uptime and clock, as the job printed them. */
function probe(r: CliResult): { uptime: number; now: number; rand: string } {
  const m = /uptime=([\d.]+) now=(\d+)/.exec(r.stdout);
  const rand = /^rand=([0-9a-f]{32})$/m.exec(r.stdout);
  if (!m || !rand) throw new Error(`no probe output:\n${show(r)}`);
  return { uptime: Number(m[1]), now: Number(m[2]), rand: rand[1]! };
}

describe('warm starts through the CLI', () => {
  it('the first build boots and saves a state; the second restores it', async () => {
    const first = await build('first');
    expect(first.code, show(first)).toBe(0);
    expect(first.stdout).toMatch(/Machine booted in [\d.]+s/);
    expect(first.stdout).toMatch(/saved the booted machine/);
    const p1 = probe(first);
    expect(p1.uptime).toBeLessThan(first.elapsed); // booted by this CLI: never older than it

    const second = await build('second');
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toMatch(/Machine restored in [\d.]+s \(from a saved state\)/);
    const p2 = probe(second);
    // The guest has been up longer than this CLI process has existed: it was booted earlier and restored.
    expect(p2.uptime).toBeGreaterThan(second.elapsed);
    // Its clock was set from the host (it woke with the time of the save).
    expect(Math.abs(p2.now - Date.now() / 1000)).toBeLessThan(second.elapsed + 5);
  });

  it('two builds at once restore from one state, with their own random bytes', async () => {
    const [a, b] = await Promise.all([build('twin-a'), build('twin-b')]);
    for (const r of [a, b]) {
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(/Machine restored in/);
    }
    expect(probe(a).rand).not.toBe(probe(b).rand);
  });

  it('-warm off boots and saves nothing', async () => {
    const r = await build('off', '-warm', 'off');
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/Machine booted in/);
    expect(r.stdout).not.toMatch(/warm start/);
  });

  it('a damaged state file falls back to a cold boot with a one-line reason, and the build passes', async () => {
    const root = path.join(work, 'cache', 'warm');
    const keyDir = path.join(
      root,
      readdirSync(root).find((n) => /^[0-9a-f]{64}$/.test(n))!,
    );
    const { generation } = JSON.parse(readFileSync(path.join(keyDir, 'current'), 'utf8')) as { generation: string };
    const fh = await open(path.join(keyDir, generation, 'machine.state'), 'r+');
    const { size } = await fh.stat();
    await fh.write(Buffer.alloc(4096, 0xa5), 0, 4096, Math.floor(size / 2));
    await fh.close();
    const r = await build('damaged');
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/could not restore the saved machine \(.+\); booting cold/);
    expect(r.stdout).toMatch(/Machine booted in/);
    expect(JSON.parse(readFileSync(path.join(keyDir, 'current'), 'utf8')).generation).not.toBe(generation);
  });
});
