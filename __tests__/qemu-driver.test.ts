// The qemu driver end to end, through the bundled CLI, with real VMs booted
// from our own builder's `fast` image (software emulation here; KVM where it works).
// Each boot costs ~10-20 s, so each test boots at most once (two builds at once: twice).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliResult, projectArgs } from './helpers/cli.js';
import { alive, qemuChildren, staticServer, testDisks, testImage, waitUntil } from './helpers/vm.js';

const VM_TEST_MS = 300_000;
let work: string;
let disks: string;
const started: number[] = [];

beforeAll(() => {
  disks = testDisks();
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-qemu-test-'));
});

afterAll(() => {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** A build folder with a manifest, a driver.conf pointing at the test disks and an artifacts folder. */
function project(name: string, manifest: string): string {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), manifest);
  writeFileSync(path.join(dir, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory 1024\n}\n`);
  return dir;
}

/** Cold boots (-warm off) unless a test asks otherwise: warm starts have their own tests. */
function args(dir: string, ...extra: string[]): string[] {
  if (!extra.includes('-warm')) extra = ['-warm', 'off', ...extra];
  return [...projectArgs(dir, { cacheDir: path.join(work, 'cache') }), '-image-build', 'never', ...extra];
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** JSON strings are valid YAML scalars: awkward values stay exact. */
const q = (s: string) => JSON.stringify(s);

describe('qemu driver: a realistic build', () => {
  it(
    'clones a served repository, places objects, passes awkward env, builds a program, collects globbed artifacts, tolerates an allowed failure',
    async () => {
      // A git repository served over dumb HTTP on the loopback; the guest sees the host as 10.0.2.2.
      const repo = path.join(work, 'repo-src');
      mkdirSync(repo, { recursive: true });
      writeFileSync(
        path.join(repo, 'build.sh'),
        [
          'set -e',
          'mkdir -p out',
          // The "program": generated and made executable in the guest, run there, then collected.
          'printf \'#!/bin/sh\\necho "hello from %s built on $(uname -s)"\\n\' "$(git rev-parse --short HEAD)" > out/hello',
          'chmod +x out/hello',
          'for n in one two; do echo "report $n" > out/$n.txt; done',
          'echo not-collected > out/skip.log',
          '',
        ].join('\n'),
      );
      const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
      const git = (cwd: string, ...a: string[]) => execFileSync('git', a, { cwd, env: gitEnv, stdio: 'pipe' }).toString().trim();
      git(repo, 'init', '-q', '-b', 'main');
      git(repo, 'add', '.');
      git(repo, 'commit', '-q', '-m', 'first');
      const head = git(repo, 'rev-parse', '--short', 'HEAD');
      const served = path.join(work, 'served');
      mkdirSync(served);
      git(work, 'clone', '-q', '--bare', repo, path.join(served, 'project.git'));
      git(path.join(served, 'project.git'), 'update-server-info');
      const server = await staticServer(served);
      try {
        const env = {
          GREETING: 'hello world',
          QUOTES: `it's "quoted" $HOME \`id\` \\ back`,
          EQUALS: 'a=b=c',
          EMPTY: '',
          UNICODE: 'ünïcødé ✓',
        };
        const dir = project(
          'realistic',
          [
            'driver:',
            '  type: qemu',
            '  image: debian/stable',
            'env:',
            ...Object.entries(env).map(([k, v]) => `- ${q(`${k}=${v}`)}`),
            'objects:',
            '- data.txt => /root/placed/data.txt',
            '- tool.sh',
            'sources:',
            `- http://10.0.2.2:${server.port}/project.git => project`,
            'stages:',
            '- build',
            '- extras',
            'allow_failures:',
            '- extras',
            'jobs:',
            '- stage: build',
            '  name: compile',
            '  commands:',
            '  - (cd project && sh build.sh)',
            '  - ./project/out/hello',
            `  - printf '%s\\n' "$GREETING" "$QUOTES" "$EQUALS" "[$EMPTY]" "$UNICODE" > env.txt`,
            '  - cat /root/placed/data.txt',
            '  - sh tool.sh',
            '  artifacts:',
            '  - project/out/*.txt => txt-*',
            '  - project/out/hello',
            '  - env.txt',
            '- stage: extras',
            '  name: flaky',
            '  commands:',
            '  - hostname > flaky.txt',
            '  - exit 3',
            '  artifacts:',
            '  - flaky.txt',
            '',
          ].join('\n'),
        );
        writeFileSync(path.join(dir, 'data.txt'), 'object data 42\n');
        writeFileSync(path.join(dir, 'tool.sh'), 'echo "tool ran as $(id -un)"\n');
        // The default path: warm starts on (a first run boots and saves the machine).
        const r = await runCli(args(dir, '-warm', 'on'));
        expect(r.code, show(r)).toBe(0);
        expect(r.stdout).toMatch(/Booting machine with image debian\/stable/);
        expect(r.stdout).toContain('object data 42');
        expect(r.stdout).toContain('tool ran as root');
        expect(r.stdout).toContain(`hello from ${head} built on Linux`);
        expect(r.stdout).toMatch(/passed_with_failures|passed with failures/i);
        const art = path.join(dir, 'artifacts');
        expect(readFileSync(path.join(art, 'txt-one.txt'), 'utf8')).toBe('report one\n');
        expect(readFileSync(path.join(art, 'txt-two.txt'), 'utf8')).toBe('report two\n');
        expect(existsSync(path.join(art, 'txt-skip.log'))).toBe(false);
        expect(readFileSync(path.join(art, 'env.txt'), 'utf8')).toBe(`${env.GREETING}\n${env.QUOTES}\n${env.EQUALS}\n[]\n${env.UNICODE}\n`);
        // The program built in the guest runs here too (a shell program: same output).
        const hello = path.join(art, 'hello');
        expect(statSync(hello).size).toBeGreaterThan(0);
        expect(execFileSync('sh', [hello]).toString()).toContain(`hello from ${head}`);
        // Artifacts of the failed (allowed) job are collected: the guest's hostname.
        expect(readFileSync(path.join(art, 'flaky.txt'), 'utf8').trim()).toBe('djinn');
      } finally {
        await server.close();
      }
    },
    VM_TEST_MS,
  );
});

const FAILING = [
  'driver:',
  '  type: qemu',
  '  image: debian/stable',
  'stages:',
  '- first',
  '- second',
  'jobs:',
  '- stage: first',
  '  name: breaks',
  '  commands:',
  '  - echo partial > partial.txt',
  '  - exit 1',
  '  - echo never-here',
  '  artifacts:',
  '  - partial.txt',
  '- stage: second',
  '  name: later',
  '  commands:',
  '  - echo second-stage-ran',
  '',
].join('\n');

const PASSING = [
  'driver:',
  '  type: qemu',
  '  image: debian/stable',
  'stages:',
  '- only',
  'jobs:',
  '- stage: only',
  '  commands:',
  '  - echo "vm says $(cat /etc/hostname)"',
  '',
].join('\n');

/** The port of this build's SSH forward, from the transport's host-key line. */
function sshPort(stdout: string): number | undefined {
  const m = /127\.0\.0\.1:(\d+)/.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

describe('qemu driver: failures and concurrency', () => {
  it(
    'two builds at once: each its own VM and port; a failing job stops the build and keeps its artifacts',
    async () => {
      const bad = project('failing', FAILING);
      const good = project('passing', PASSING);
      const [rb, rg] = await Promise.all([runCli(args(bad)), runCli(args(good))]);
      expect(rb.code, show(rb)).toBe(1);
      expect(rb.stdout).not.toContain('second-stage-ran');
      expect(rb.stdout).not.toContain('echo never-here');
      expect(readFileSync(path.join(bad, 'artifacts', 'partial.txt'), 'utf8')).toBe('partial\n');
      expect(rg.code, show(rg)).toBe(0);
      expect(rg.stdout).toContain('vm says djinn');
      const pb = sshPort(rb.stdout);
      const pg = sshPort(rg.stdout);
      expect(pb).toBeDefined();
      expect(pg).toBeDefined();
      expect(pb).not.toBe(pg);
    },
    VM_TEST_MS,
  );

  it(
    'SIGTERM in the middle of a job: exit 143 and the QEMU process is gone',
    async () => {
      const dir = project(
        'sigterm',
        [
          'driver:',
          '  type: qemu',
          '  image: debian/stable',
          'stages:',
          '- s',
          'jobs:',
          '- stage: s',
          '  commands:',
          '  - echo long-job-started',
          '  - sleep 600',
          '',
        ].join('\n'),
      );
      const run = startCli(args(dir));
      await run.waitFor(/long-job-started/, 240_000);
      const pids = qemuChildren(run.child.pid!);
      started.push(...pids);
      expect(pids.length).toBe(1);
      expect(alive(pids[0])).toBe(true);
      run.child.kill('SIGTERM');
      const r = await run.done;
      expect(r.code, show(r)).toBe(143);
      expect(await waitUntil(() => !alive(pids[0]), 10_000)).toBe(true);
    },
    VM_TEST_MS,
  );

  it(
    "an image whose SSH server never starts: boot timeout, the serial console's last lines shown, nothing left running",
    async () => {
      // The test image with its kernel told to use a root disk that does not exist: the initrd
      // gives up and says so on the serial console; sshd never starts. Also: raw only when asked.
      const raw = path.join(work, 'nossh.raw');
      execFileSync('qemu-img', ['convert', '-O', 'raw', testImage(), raw]);
      const cfg = path.join(work, 'syslinux.cfg');
      const fat = `${raw}@@1M`;
      const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
      execFileSync('mcopy', ['-o', '-i', fat, '::/syslinux.cfg', cfg], { env });
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('root=/dev/vda2', 'root=/dev/vdz9'));
      execFileSync('mcopy', ['-o', '-i', fat, cfg, '::/syslinux.cfg'], { env });
      const dir = project('nossh', PASSING);
      // One vCPU: on a loaded 2-core host a second emulated CPU can print RCU-stall traces that push
      // the initrd's message out of the console tail.
      // This guest goes quiet after its message, which the stall watch would take for a stall
      // (qemu-boot-stall.test.ts covers that): a window past the timeout leaves the timeout to act.
      const run = startCli(
        args(dir, '-image-file', raw, '-image-format', 'raw', '-boot-timeout', '45s', '-boot-stall', '10m', '-cpus', '1'),
      );
      const pids: number[] = [];
      let exited = false;
      void run.done.then(() => (exited = true));
      await waitUntil(() => (pids.push(...qemuChildren(run.child.pid!)), pids.length > 0 || exited), 120_000);
      started.push(...pids);
      const r = await run.done;
      rmSync(raw, { force: true });
      expect(r.code, show(r)).toBe(1);
      const all = r.stdout + r.stderr;
      expect(all).toMatch(/Timed out trying to connect to 127\.0\.0\.1:\d+ after 45s/);
      expect(all).toContain('serial console');
      expect(all).toContain('cannot mount the root file system /dev/vdz9');
      expect(pids.length).toBe(1);
      expect(await waitUntil(() => !alive(pids[0]), 10_000)).toBe(true);
    },
    VM_TEST_MS,
  );
});

describe('qemu driver: images refused before booting', () => {
  it('a missing image names the path looked at and lists the images present', async () => {
    const dir = project('missing', PASSING);
    // No image server reachable (port 9 on the loopback): the download source fails too.
    const r = await runCli(args(dir, '-image', 'centos/7', '-image-server', 'http://127.0.0.1:9'));
    expect(r.code, show(r)).toBe(1);
    const all = r.stdout + r.stderr;
    expect(all).toContain(path.join(disks, 'qemu', 'x86_64', 'centos', '7'));
    expect(all).toMatch(/Images present under .*: .*debian\/stable/);
  });

  it('a file that is not qcow2 is refused', async () => {
    const dir = project('notqcow', PASSING);
    const file = path.join(dir, 'fake.qcow2');
    writeFileSync(file, 'this is not a disk image\n'.repeat(100));
    const r = await runCli(args(dir, '-image-file', file));
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/is not a qcow2 file/);
  });

  it('a qcow2 with a backing file (here: a host file) is refused', async () => {
    const dir = project('backing', PASSING);
    const file = path.join(dir, 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/passwd', file, '1M']);
    const r = await runCli(args(dir, '-image-file', file));
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/has a backing file; such images are refused/);
  });
});
