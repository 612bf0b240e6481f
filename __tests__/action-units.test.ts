// The action's small decisions, tested directly: which sources are the
// workflow's own repository, the streamed workspace copy, KVM and QEMU
// preparation, default artifact names, env lines.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureQemu, prepareKvm } from '../src/action/host.js';
import { defaultArtifactName } from '../src/action/inputs.js';
import { copyWorkspace, isOwnRepository, takeOverOwnSources } from '../src/action/workspace.js';
import type { Driver } from '../src/drivers/driver.js';
import { UsageError } from '../src/core/errors.js';
import { parseManifest } from '../src/manifest/parse.js';
import { makePlan } from '../src/manifest/plan.js';
import { silentReporter } from '../src/core/reporter.js';
import { parseEnvLines } from '../src/runner/prepare.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'djinn-action-unit-'));
  dirs.push(d);
  return d;
}

describe('the workflow repository', () => {
  const env = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'Octo/Example' };
  it.each([
    ['https://github.com/octo/example', true],
    ['https://github.com/octo/example.git', true],
    ['https://github.com/Octo/Example/', true],
    ['git@github.com:octo/example.git', true],
    ['ssh://git@github.com/octo/example', true],
    ['https://github.com/octo/example-tools.git', false],
    ['https://gitlab.com/octo/example.git', false],
  ])('%s → %s', (url, own) => {
    expect(isOwnRepository(url, env)).toBe(own);
  });

  it('follows GITHUB_SERVER_URL (GHES)', () => {
    expect(
      isOwnRepository('https://ghe.example.com/octo/example.git', {
        GITHUB_SERVER_URL: 'https://ghe.example.com',
        GITHUB_REPOSITORY: 'octo/example',
      }),
    ).toBe(true);
  });

  it("removes only the own repository's clone job from the plan", () => {
    const m = parseManifest(
      'driver:\n  type: os\nsources:\n- https://github.com/octo/example.git\n' +
        '- https://github.com/octo/lib.git => deps/lib\nstages:\n- build\njobs:\n- stage: build\n  commands: ["true"]\n',
    );
    const plan = makePlan(m);
    const copies = takeOverOwnSources(plan, env);
    expect(copies.map((c) => c.dir)).toEqual(['example']);
    expect(plan.stages[0].jobs.map((j) => j.source?.url)).toEqual(['https://github.com/octo/lib.git']);
    const onlyOwn = makePlan(
      parseManifest(
        'driver:\n  type: os\nsources:\n- https://github.com/octo/example\nstages:\n- build\njobs:\n- stage: build\n  commands: ["true"]\n',
      ),
    );
    takeOverOwnSources(onlyOwn, env);
    expect(onlyOwn.stages.map((s) => s.name)).toEqual(['build']);
  });
});

describe('streamed workspace copy', () => {
  it('pipes a tar of the workspace into the driver exec, keeping folders, dot files and modes', async () => {
    const ws = await tmp();
    const guest = await tmp();
    await mkdir(path.join(ws, 'sub', 'deep'), { recursive: true });
    await writeFile(path.join(ws, 'sub', 'deep', 'file.txt'), 'deep\n');
    await writeFile(path.join(ws, '.hidden'), 'dot\n');
    await writeFile(path.join(ws, 'run.sh'), '#!/bin/sh\n');
    await chmod(path.join(ws, 'run.sh'), 0o755);
    const commands: string[] = [];
    // A machine stand-in: runs the command with sh in a folder, stdin attached, as SshSession.exec does remotely.
    const driver = {
      exec: (command: string, opts?: { stdin?: NodeJS.ReadableStream }) =>
        new Promise((resolve) => {
          commands.push(command);
          const child = spawn('sh', ['-c', command], { cwd: guest, stdio: ['pipe', 'pipe', 'pipe'] });
          const out: Buffer[] = [];
          const err: Buffer[] = [];
          child.stdout.on('data', (c: Buffer) => out.push(c));
          child.stderr.on('data', (c: Buffer) => err.push(c));
          opts?.stdin?.pipe(child.stdin);
          child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
        }),
    } as unknown as Driver;
    const lines: string[] = [];
    const reporter = { ...silentReporter, info: (l: string) => lines.push(l) };
    await copyWorkspace(
      driver,
      [{ source: { url: 'x', ref: '', dir: "it's here", position: {} }, dir: "it's here" }],
      ws,
      await tmp(),
      reporter,
    );
    // Emptied first: a machine restored from a stage state still holds the copy of the run that saved it.
    expect(commands).toEqual([`rm -rf 'it'\\''s here' && mkdir -p 'it'\\''s here' && tar -C 'it'\\''s here' -xof -`]);
    const dst = path.join(guest, "it's here");
    expect(await readFile(path.join(dst, 'sub', 'deep', 'file.txt'), 'utf8')).toBe('deep\n');
    expect(await readFile(path.join(dst, '.hidden'), 'utf8')).toBe('dot\n');
    expect((await stat(path.join(dst, 'run.sh'))).mode & 0o111).not.toBe(0);
    expect(lines.at(-1)).toMatch(/^Copied the workspace into it's here: [\d.]+ KiB in /);
  });

  it('fails with the guest side error when the extraction fails', async () => {
    const ws = await tmp();
    const driver = {
      exec: async () => ({ code: 2, stdout: Buffer.alloc(0), stderr: Buffer.from('tar: no space left') }),
    } as unknown as Driver;
    await expect(
      copyWorkspace(driver, [{ source: { url: 'x', ref: '', dir: 'd', position: {} }, dir: 'd' }], ws, await tmp(), silentReporter),
    ).rejects.toThrow(/copying the workspace into d failed \(exit 2\): tar: no space left/);
  });
});

describe('runner preparation', () => {
  it('falls back to TCG, saying why, without /dev/kvm', async () => {
    const res = await prepareKvm(path.join(await tmp(), 'no-kvm'));
    expect(res.accelerator).toBe('tcg');
    expect(res.why).toMatch(/has no .*no-kvm \(no hardware virtualisation\)/);
  });

  it('uses KVM when the device opens read-write', async () => {
    const dev = path.join(await tmp(), 'kvm');
    await writeFile(dev, '');
    await chmod(dev, 0o666);
    expect(await prepareKvm(dev)).toEqual({ accelerator: 'kvm' });
  });

  it('installs QEMU (and zstd for the cache) with apt-get when it is missing', async () => {
    const calls: string[] = [];
    const saved = process.env.PATH;
    process.env.PATH = await tmp(); // no qemu-system-x86_64 here
    try {
      await ensureQemu([], undefined, async (cmd, args) => {
        calls.push([cmd, ...args].join(' '));
        return 0;
      });
    } finally {
      process.env.PATH = saved;
    }
    const sudo = process.getuid?.() === 0 ? '' : 'sudo -n ';
    expect(calls).toEqual([
      `${sudo}env DEBIAN_FRONTEND=noninteractive apt-get update -q`,
      `${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 qemu-utils zstd`,
    ]);
    process.env.PATH = await tmp();
    try {
      await expect(ensureQemu([], undefined, async () => 100)).rejects.toThrow(/installing QEMU .* failed \(exit 100\)/);
    } finally {
      process.env.PATH = saved;
    }
  });

  it("installs the builder's tools in the same single apt-get call when the image is to be built", async () => {
    const calls: string[] = [];
    const saved = process.env.PATH;
    process.env.PATH = await tmp();
    try {
      await ensureQemu(['image-build'], 'no server has debian/stable', async (cmd, args) => {
        calls.push([cmd, ...args].join(' '));
        return 0;
      });
    } finally {
      process.env.PATH = saved;
    }
    const installs = calls.filter((c) => c.includes('apt-get install'));
    expect(installs).toHaveLength(1);
    const pkgs = installs[0].split(' --no-install-recommends ')[1].split(' ');
    for (const p of ['qemu-system-x86', 'qemu-utils', 'zstd', 'mmdebstrap', 'mtools', 'cpio', 'xz-utils']) expect(pkgs).toContain(p);
    expect(new Set(pkgs).size).toBe(pkgs.length);
  });
});

describe('default artifact name', () => {
  it('differs between matrix legs, marks re-runs and drops characters artifacts refuse', () => {
    const base = { GITHUB_JOB: 'build', INPUT_MANIFEST: '.djinn/debian.yml', INPUT_IMAGE: 'debian/stable' };
    const a = defaultArtifactName(base);
    expect(a).toMatch(/^djinn-build-debian-debian_stable-[0-9a-f]{8}$/);
    expect(defaultArtifactName({ ...base, INPUT_IMAGE: 'debian/oldstable' })).not.toBe(a);
    expect(defaultArtifactName({ ...base, INPUT_CPUS: '4' })).not.toBe(a);
    expect(defaultArtifactName({ ...base, GITHUB_RUN_ATTEMPT: '2' })).toBe(`${a}-attempt2`);
    // Secrets in the env input do not change (or leak into) the name.
    expect(defaultArtifactName({ ...base, INPUT_ENV: 'TOKEN=x' })).toBe(a);
  });
});

describe('env lines', () => {
  it('parses KEY=VALUE lines and never echoes a value in its error', () => {
    expect(parseEnvLines(['A=1', '', '# note', 'B=x=y', 'C='], 'input env')).toEqual([
      { key: 'A', value: '1' },
      { key: 'B', value: 'x=y' },
      { key: 'C', value: '' },
    ]);
    try {
      parseEnvLines(['supersecretvalue'], 'input env');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).format()).toBe('input env: line 1: expected KEY=VALUE; the line has no "=".');
    }
  });
});

describe('step summary', () => {
  it('says whether the machine was booted or restored, with the image note and artifact sizes', async () => {
    const { writeSummary } = await import('../src/action/summary.js');
    const { summary } = await import('@actions/core');
    const dir = await tmp();
    const file = path.join(dir, 'summary.md');
    await writeFile(file, '');
    const saved = process.env.GITHUB_STEP_SUMMARY;
    process.env.GITHUB_STEP_SUMMARY = file;
    try {
      summary.emptyBuffer();
      await writeSummary(
        [
          {
            manifest: '.djinn.yml',
            artifactsDir: dir,
            report: {
              status: 'passed',
              durationMs: 4200,
              jobs: [{ stage: 'build', name: 'make <all>', status: 'passed', durationMs: 1500 }],
              artifacts: [{ job: 'make <all>', src: 'bin/app', dst: 'app', path: path.join(dir, 'app'), bytes: 3 * 1024 * 1024 }],
              facts: {
                driver: 'qemu',
                image: 'debian/stable',
                imageNote: 'restored from the repository cache in 1.3s',
                accelerator: 'kvm',
                start: 'restored',
                startSeconds: 1.6,
              },
            },
          },
        ],
        { name: 'djinn-build', id: 7, url: 'https://github.com/o/r/actions/runs/1/artifacts/7' },
      );
    } finally {
      process.env.GITHUB_STEP_SUMMARY = saved;
    }
    const text = await readFile(file, 'utf8');
    expect(text).toContain(
      'image <code>debian/stable</code> (restored from the repository cache in 1.3s) · accelerator kvm · restored from a saved state in 1.6 s',
    );
    expect(text).toContain('<td>build</td><td>make &lt;all&gt;</td><td>✅ passed</td><td>1.5s</td>');
    expect(text).toContain('<td>app</td><td>make &lt;all&gt;</td><td>3.0 MiB</td>');
    expect(text).toContain('<a href="https://github.com/o/r/actions/runs/1/artifacts/7">djinn-build</a>');
  });
});
