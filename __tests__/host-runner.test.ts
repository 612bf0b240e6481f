// The committed action on a stock hosted runner: a fresh Debian root (see
// helpers/fresh-root.ts) where the user `runner` has passwordless sudo and
// nothing else is installed, the environment a hosted runner gives, and no
// image server reachable. The first job installs its tools through sudo,
// builds the image, boots it, runs a manifest and collects its artifacts;
// the second job, in a second fresh root, restores the image through the real
// @actions/cache client (Azurite + the results-service stand-in, which mocks
// GitHub's own servers) and builds nothing. Heavy: hold /work/vm.lock.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MIB } from '../src/images/builder/disk.js';
import { actionDefaults, parseFileCommands } from './helpers/action-harness.js';
import { startAzurite, type Azurite } from './helpers/azurite.js';
import { ROOT } from './helpers/cli.js';
import { makeFreshRoot, timed, type FreshRoot } from './helpers/fresh-root.js';
import { startResultsService, type ResultsService } from './helpers/results-service.js';

const PARENT = path.join(process.env.DJINN_CI_CACHE || '/var/cache/djinn-ci', 'fresh-roots');

const MANIFEST = `driver:
  type: qemu
  image: debian/stable
objects:
- greeting.txt => in/greeting.txt
stages:
- build
jobs:
- stage: build
  commands:
  - . /etc/os-release
  - echo "built on $PRETTY_NAME, $(uname -m)" > build-info.txt
  - cp /bin/true bin-true
  - cat in/greeting.txt
  artifacts:
  - build-info.txt
  - bin-true => bin/true
`;

/** A loopback port nothing listens on: the image server is unreachable. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Lays out a hosted runner's folders in the root, owned by runner; returns the environment. */
function runnerLayout(root: FreshRoot, extra: Record<string, string>, inputs: Record<string, string>): Record<string, string> {
  const inRoot = (p: string) => path.join(root.dir, p);
  const ws = '/home/runner/work/example/example';
  mkdirSync(inRoot(ws), { recursive: true });
  // Small on purpose (the quickstart test runs examples/hello): an object in, artifacts out.
  writeFileSync(inRoot(`${ws}/.djinn.yml`), MANIFEST);
  writeFileSync(inRoot(`${ws}/greeting.txt`), 'hello from the workspace\n');
  // The action as a workflow's `uses:` checks it out: its committed files.
  mkdirSync(inRoot('/home/runner/work/_actions/djinn-vm'), { recursive: true });
  cpSync(path.join(ROOT, 'dist'), inRoot('/home/runner/work/_actions/djinn-vm/dist'), { recursive: true });
  cpSync(path.join(ROOT, 'action.yml'), inRoot('/home/runner/work/_actions/djinn-vm/action.yml'));
  for (const d of ['/home/runner/work/_temp/_runner_file_commands', '/opt/hostedtoolcache']) mkdirSync(inRoot(d), { recursive: true });
  const files: Record<string, string> = {};
  for (const f of ['output', 'state', 'env', 'path', 'summary']) {
    files[f] = `/home/runner/work/_temp/_runner_file_commands/${f}`;
    writeFileSync(inRoot(files[f]), '');
  }
  execFileSync('chroot', [root.dir, 'chown', '-R', 'runner:runner', '/home/runner', '/opt/hostedtoolcache']);
  const env: Record<string, string> = {
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_TEMP: '/home/runner/work/_temp',
    RUNNER_TOOL_CACHE: '/opt/hostedtoolcache',
    GITHUB_WORKSPACE: ws,
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_ENV: files.env,
    GITHUB_PATH: files.path,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY: 'octo/example',
    GITHUB_RUN_ID: '2001',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'build',
    ...extra,
  };
  for (const [k, v] of Object.entries({ ...actionDefaults(), ...inputs })) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  return env;
}

/** uid:gid and octal mode of files in a built image's root file system (debugfs, no mount). */
function ownersInImage(qcow2: string, files: string[]): string[] {
  const raw = `${qcow2}.test-raw`;
  execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', qcow2, raw]);
  try {
    const offset = (2048 + BOOT_MIB * 2048) * 512;
    return files.map((f) => {
      const out = execFileSync('debugfs', ['-R', `stat ${f}`, `${raw}?offset=${offset}`], {
        stdio: ['ignore', 'pipe', 'ignore'],
      }).toString();
      const mode = /Mode:\s+0?(\d+)/.exec(out)?.[1];
      const type = /Type: (\w+)/.exec(out)?.[1] === 'directory' ? '40' : '100';
      return `${/User:\s+(\d+)/.exec(out)?.[1]}:${/Group:\s+(\d+)/.exec(out)?.[1]} ${type}${mode?.padStart(3, '0').slice(-3)}`;
    });
  } finally {
    rmSync(raw, { force: true });
  }
}

function installed(root: FreshRoot, pkg: string): boolean {
  try {
    return execFileSync('chroot', [root.dir, 'dpkg-query', '-W', '-f=${Status}', pkg], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .includes('install ok installed');
  } catch {
    return false;
  }
}

describe('the committed action on a stock hosted runner (user runner with sudo, nothing installed)', () => {
  let azurite: Azurite;
  let results: ResultsService;
  const roots: FreshRoot[] = [];
  let inputs: Record<string, string>;

  beforeAll(async () => {
    azurite = await startAzurite();
    results = await startResultsService(azurite.blobUrl);
    inputs = {
      kvm: 'off',
      'image-server': `http://127.0.0.1:${await closedPort()}`,
      'upload-artifacts': 'false',
      'warm-start': 'off',
      'artifacts-dir': 'out',
    };
  }, 60_000);
  afterAll(async () => {
    for (const r of roots) await r.remove();
    await results?.stop();
    await azurite?.stop();
  }, 120_000);

  async function job(label: string) {
    const root = await timed(`${label}: fresh root`, () => makeFreshRoot(PARENT));
    roots.push(root);
    const env = runnerLayout(root, results.env, inputs);
    const res = await timed(`${label}: action main`, () =>
      root.run('runner', ['node', '/home/runner/work/_actions/djinn-vm/dist/index.js'], env, {
        cwd: env.GITHUB_WORKSPACE,
        limitMs: 25 * 60_000,
      }),
    );
    const outputs = parseFileCommands(readFileSync(path.join(root.dir, env.GITHUB_OUTPUT), 'utf8'));
    const installs = res.output.match(/^Installed .* in .*$/gm) ?? [];
    console.log(`${label}: ${installs.join('; ') || 'installed nothing'}`);
    const artifacts = path.join(root.dir, env.GITHUB_WORKSPACE, 'out');
    const listing = existsSync(artifacts) ? readdirSync(artifacts, { recursive: true }).join(', ') : 'no artifacts folder';
    // What the log says, to read when an assertion below fails.
    const log = `${res.output.slice(-6000)}\nartifacts: ${listing}`;
    return { root, res: { code: res.code, output: res.output }, log, outputs, artifacts };
  }

  it(
    'first job: installs through sudo, builds the image, runs the manifest, collects the artifacts; second job restores the image from the cache',
    async () => {
      const one = await job('first job');
      expect(one.res.code, one.log).toBe(0);
      expect(one.outputs.status).toBe('passed');
      expect(one.res.output).toMatch(/through sudo/);
      // One apt-get call, decided before it: QEMU, zstd and the builder's tools (no server or cache has the image).
      const installs1 = one.res.output.match(/^Installed .* in .*$/gm) ?? [];
      expect(installs1, one.log).toHaveLength(1);
      for (const pkg of ['qemu-system-x86', 'zstd', 'mmdebstrap', 'mtools']) expect((installs1[0] ?? '').split(' '), pkg).toContain(pkg);
      expect(one.res.output.match(/apt-get install/g), one.log).toHaveLength(1);
      for (const pkg of ['qemu-system-x86', 'mmdebstrap', 'fdisk', 'dosfstools', 'mtools', 'syslinux', 'openssh-client'])
        expect(installed(one.root, pkg), pkg).toBe(true);
      expect(one.res.output).toMatch(/Image debian\/stable came from build in /);
      expect(one.res.output).toMatch(/Image debian\/stable saved to the repository cache in /);
      expect(existsSync(path.join(one.artifacts, 'bin/true')), one.log).toBe(true);
      expect(readFileSync(path.join(one.artifacts, 'bin/true')).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(readFileSync(path.join(one.artifacts, 'build-info.txt'), 'utf8')).toMatch(/^built on Debian GNU\/Linux .*, x86_64$/m);
      expect(one.res.output).toContain('hello from the workspace');
      // The image belongs to runner; nothing under its home is left owned by root.
      const rootOwned = execFileSync('find', [path.join(one.root.dir, 'home/runner'), '-uid', '0'])
        .toString()
        .trim();
      expect(rootOwned).toBe('');
      expect(one.root.qemuProcesses()).toEqual([]);
      expect(results.caches.some((c) => c.finalized && c.key.startsWith('djinn-image-v1-debian_2fstable-rev-'))).toBe(true);

      // The image the runner user built: its own file, with root-owned files inside.
      const image = path.join(one.root.dir, 'home/runner/.cache/djinn/images/built/qemu/x86_64/debian/stable');
      expect(statSync(image).uid).toBe(Number(execFileSync('chroot', [one.root.dir, 'id', '-u', 'runner']).toString()));
      expect(
        ownersInImage(image, ['/root/.ssh', '/etc/ssh/sshd_config.d/djinn.conf', '/etc/shadow', '/etc/ssh/ssh_host_ed25519_key']),
      ).toEqual(['0:0 40700', '0:0 100644', '0:42 100640', '0:0 100600']);

      // An image build interrupted while mmdebstrap runs (through sudo) leaves no root-owned tree and no mount.
      const building = one.root.run('runner', [
        'node',
        '/home/runner/work/_actions/djinn-vm/dist/cli.js',
        'image',
        'build',
        'debian/stable',
        '-o',
        '/home/runner/x.qcow2',
      ]);
      const tree = () => readdirSync(path.join(one.root.dir, 'home/runner')).filter((f) => f.startsWith('.djinn-image-build-'));
      for (let i = 0; i < 600 && !existsSync(path.join(one.root.dir, 'home/runner', tree()[0] ?? 'none', 'rootfs', 'usr')); i++)
        await sleep(500);
      expect(tree()).toHaveLength(1);
      await sleep(3000);
      for (const pid of one.root.processes(/^node .*image build/)) process.kill(pid, 'SIGINT');
      const interrupted = await building;
      expect(interrupted.code, interrupted.output).not.toBe(0);
      expect(interrupted.output).toMatch(/interrupted by SIGINT|cancelled/);
      expect(tree()).toEqual([]);
      expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(path.join(one.root.dir, 'home'));
      expect(existsSync(path.join(one.root.dir, 'home/runner/x.qcow2'))).toBe(false);

      const two = await job('second job');
      expect(two.res.code, two.log).toBe(0);
      expect(two.outputs.status).toBe('passed');
      expect(two.res.output).toMatch(/Image debian\/stable restored from the repository cache in /);
      expect(two.res.output).not.toMatch(/Building image|mmdebstrap/);
      // Only what this build needed, in one call: QEMU and zstd (to restore), not the builder's tools.
      const installs2 = two.res.output.match(/^Installed .* in .*$/gm) ?? [];
      expect(installs2, two.log).toHaveLength(1);
      for (const pkg of ['qemu-system-x86', 'zstd']) expect((installs2[0] ?? '').split(' '), pkg).toContain(pkg);
      expect(installs2[0] ?? '').not.toContain('mmdebstrap');
      expect(two.res.output).toMatch(/debian\/stable is in the repository cache/);
      expect(installed(two.root, 'qemu-system-x86')).toBe(true);
      expect(installed(two.root, 'mmdebstrap')).toBe(false);
      expect(existsSync(path.join(two.artifacts, 'bin/true')), two.log).toBe(true);
      expect(readFileSync(path.join(two.artifacts, 'bin/true')).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(two.root.qemuProcesses()).toEqual([]);
    },
    50 * 60_000,
  );
});
