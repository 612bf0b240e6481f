// A catalogue image end to end, with a real VM (TCG): a loopback server laid
// out like cloud.debian.org (<codename>/latest/debian-<N>-genericcloud-amd64.qcow2
// and a real SHA512SUMS) serves our builder's `cloud` flavor, which like Debian's
// genericcloud image has cloud-init and no way in for root until the seed's key
// is written. Through `-image-mirror debian=...`: seed, root login, jobs,
// artifacts, warm save after cloud-init, restore; a wrong SHA512SUMS is refused.
// The image: $DJINN_CLOUD_TEST_IMAGE, else scripts/cloud-test-image.sh.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startCli, type CliResult, projectArgs } from './helpers/cli.js';
import { startCloudMirror, type CloudMirror } from './helpers/cloud-mirror.js';
import { alive, qemuChildren } from './helpers/vm.js';

let work: string;
let mirror: CloudMirror;
let image: string;
let sums: string;
const pids: number[] = [];
const FILE = 'debian-13-genericcloud-amd64.qcow2';

function cloudImage(): string {
  const fromEnv = process.env.DJINN_CLOUD_TEST_IMAGE;
  const file =
    fromEnv ||
    execFileSync(path.join(ROOT, 'scripts', 'cloud-test-image.sh'), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 20 * 60_000,
    })
      .toString()
      .trim();
  if (!existsSync(file)) throw new Error(`no cloud test image at ${file}`);
  return file;
}

async function sha512(file: string): Promise<string> {
  const h = createHash('sha512');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

beforeAll(async () => {
  image = cloudImage();
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-cloud-image-'));
  const folder = path.join(work, 'mirror', 'trixie', 'latest');
  mkdirSync(folder, { recursive: true });
  symlinkSync(image, path.join(folder, FILE));
  sums = path.join(folder, 'SHA512SUMS');
  writeFileSync(sums, `${'0'.repeat(128)}  debian-13-genericcloud-amd64.json\n${await sha512(image)}  ${FILE}\n`);
  mirror = await startCloudMirror(path.join(work, 'mirror'));
}, 1_500_000);

afterAll(async () => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await mirror?.close();
  if (work) rmSync(work, { recursive: true, force: true });
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
  '  - echo "whoami=$(id -un) home=$HOME pwd=$(pwd)"',
  '  - echo "cloud=$(cloud-init status | tr -d "\\n")"',
  '  - echo "uptime=$(cut -d" " -f1 /proc/uptime)"',
  '  - test -s /root/.ssh/authorized_keys && echo "keys=$(wc -l < /root/.ssh/authorized_keys)"',
  '  - echo hello > out.txt',
  '  artifacts:',
  '  - out.txt',
  '',
].join('\n');

async function build(name: string, ...extra: string[]): Promise<CliResult & { elapsed: number; dir: string }> {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), MANIFEST);
  writeFileSync(path.join(dir, 'driver.conf'), 'driver qemu {\n  memory 1024\n  cpus 1\n}\n');
  const t0 = Date.now();
  const run = startCli([
    ...projectArgs(dir, { cacheDir: path.join(work, 'cache') }),
    '-image-server',
    'http://127.0.0.1:1',
    '-image-source',
    'catalogue',
    '-image-mirror',
    `debian=${mirror.url}`,
    '-boot-timeout',
    '10m',
    ...extra,
  ]);
  if (run.child.pid) pids.push(run.child.pid);
  const r = await run.done;
  if (run.child.pid) expect(qemuChildren(run.child.pid)).toEqual([]);
  return { ...r, elapsed: (Date.now() - t0) / 1000, dir };
}

const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('a catalogue image through a cloud.debian.org stand-in', () => {
  it('boots with the seed, logs in as root by key after cloud-init, runs the job, saves, and restores', async () => {
    const first = await build('first');
    expect(first.code, show(first)).toBe(0);
    expect(first.stdout).toContain(
      `Downloading image debian/stable from ${mirror.url}/trixie/latest/${FILE} (SHA512 from ${mirror.url}/trixie/latest/SHA512SUMS)`,
    );
    // Done, or done with errors (told as a warning on stderr): either way the wait is over before the job.
    expect(first.stdout + first.stderr).toMatch(/cloud-init finished (\(waited [\d.]+s\)|with status \d+ after [\d.]+s)/);
    console.log(first.stderr.split('\n').find((l) => l.includes('cloud-init finished')) ?? 'cloud-init finished without errors');
    expect(first.stdout).toMatch(/whoami=root home=\/root pwd=\/root/);
    // Not running any more when the first job starts (done, or done with errors of modules our image lacks).
    expect(first.stdout).toMatch(/cloud=status: (done|error|degraded)/);
    expect(first.stdout).toMatch(/keys=1/);
    expect(first.stdout).toMatch(/saved the booted machine/);
    expect(readFileSync(path.join(first.dir, 'artifacts', 'out.txt'), 'utf8')).toBe('hello\n');
    // The save came after cloud-init: its wait is logged before the save.
    expect(first.stdout.indexOf('Machine ready in')).toBeLessThan(first.stdout.indexOf('saved the booted machine'));
    const booted = /Machine ready in ([\d.]+)s \(root logged in, cloud-init done\)/.exec(first.stdout)?.[1];
    expect(booted, show(first)).toBeDefined();

    const second = await build('second');
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toMatch(/Using cached image debian\/stable/);
    expect(second.stdout).toMatch(/Machine restored in ([\d.]+)s \(from a saved state\)/);
    expect(second.stdout).not.toMatch(/Waiting for cloud-init/);
    expect(second.stdout).toMatch(/whoami=root/);
    expect(readFileSync(path.join(second.dir, 'artifacts', 'out.txt'), 'utf8')).toBe('hello\n');
    const restored = /Machine restored in ([\d.]+)s/.exec(second.stdout)?.[1];
    const up = Number(/uptime=([\d.]+)/.exec(second.stdout)?.[1]);
    // Restored, not booted: the guest has been up longer than this build has run.
    expect(up).toBeGreaterThan(second.elapsed);
    console.log(
      `cloud flavor: first boot to a logged-in root with cloud-init done ${booted}s (build ` +
        `${first.elapsed.toFixed(1)}s); restore ${restored}s (build ${second.elapsed.toFixed(1)}s)`,
    );
  }, 1_500_000);

  it('a wrong SHA512SUMS is refused with a message about the checksum; no machine is started', async () => {
    const good = readFileSync(sums, 'utf8');
    try {
      writeFileSync(sums, `${'e'.repeat(128)}  ${FILE}\n`);
      const r = await build('wrong-sums', '-cache-dir', path.join(work, 'cache-wrong'));
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(
        new RegExp(
          `debian/stable from .*${FILE} has SHA-512 [0-9a-f]{128}, but the checksum file .*SHA512SUMS lists e{128}; the file was discarded`,
        ),
      );
      expect(r.stdout + r.stderr).not.toMatch(/Booting machine/);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    } finally {
      writeFileSync(sums, good);
    }
  }, 600_000);
});
