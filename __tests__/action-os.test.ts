// The bundled action (dist/index.js + dist/post.js) run as the runner runs it,
// with the os driver: log groups, annotations, masking, outputs, summary,
// several manifests, the workspace copy and the post step.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeRunner, runMain, runPost, type Runner } from './helpers/action-harness.js';

const runners: Runner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.cleanup();
});

async function runner(files: Record<string, string>): Promise<Runner> {
  const r = await makeRunner();
  runners.push(r);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(r.workspace, name)), { recursive: true });
    await writeFile(path.join(r.workspace, name), text);
  }
  return r;
}

const PASSING = `driver:
  type: os
env:
- GREETING=hello
stages:
- build
jobs:
- stage: build
  name: compile
  commands:
  - echo "$GREETING $TOKEN"
  - mkdir -p out && printf 'binary-bytes' > out/app
  artifacts:
  - out/app => app.bin
`;

const FAILING = `driver:
  type: os
stages:
- build
- test
jobs:
- stage: build
  name: compile
  commands:
  - echo '::set-output name=status::pwned'
  - echo '::add-mask::hello'
  - printf 'partial' > partial.txt
  artifacts:
  - partial.txt
- stage: test
  name: unit
  commands:
  - exit 3
`;

describe('action main step with the os driver', () => {
  it('runs a passing manifest: groups, outputs, artifacts and the step summary', async () => {
    const r = await runner({ '.djinn.yml': PASSING });
    const res = await runMain(r, { inputs: { env: 'TOKEN=very-secret-token', 'upload-artifacts': 'false' } });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.outputs.status).toBe('passed');
    const dir = res.outputs['artifacts-dir'];
    expect(dir.startsWith(r.temp)).toBe(true);
    expect(await readFile(path.join(dir, 'app.bin'), 'utf8')).toBe('binary-bytes');
    expect(res.stdout).toContain('::group::build / compile');
    expect(res.stdout).toContain('::endgroup::');
    // The value from the env input is masked before the job can print it.
    expect(res.stdout.indexOf('::add-mask::very-secret-token')).toBeGreaterThanOrEqual(0);
    expect(res.stdout.indexOf('::add-mask::very-secret-token')).toBeLessThan(res.stdout.indexOf('hello very-secret-token'));
    expect(res.summary).toContain('<td>build</td><td>compile</td><td>✅ passed</td>');
    expect(res.summary).toMatch(/<td>app\.bin<\/td><td>compile<\/td><td>12 B<\/td>/);
  });

  it('fails the step with an annotation at the job, keeps the guest from issuing commands, keeps artifacts', async () => {
    const r = await runner({ '.djinn.yml': FAILING });
    const res = await runMain(r, { inputs: { 'upload-artifacts': 'false' } });
    expect(res.code).toBe(1);
    expect(res.outputs.status).toBe('failed');
    // The job `unit` starts on line 15 of the manifest.
    expect(res.stdout).toMatch(/::error file=\.djinn\.yml,line=15,col=3::job unit in stage test: exit status 3/);
    expect(res.stdout).toMatch(/::error::build failed: job unit in stage test failed: exit status 3/);
    // Guest output sits between ::stop-commands::<token> and ::<token>::, so the runner ignores it.
    const m = /::stop-commands::([0-9a-f]{32})\n([\s\S]*?)\n::\1::/.exec(res.stdout);
    expect(m?.[2]).toContain('::set-output name=status::pwned');
    expect(m?.[2]).toContain('::add-mask::hello');
    expect(res.outputs.status).not.toBe('pwned');
    expect(await readFile(path.join(res.outputs['artifacts-dir'], 'partial.txt'), 'utf8')).toBe('partial');
    expect(res.summary).toContain('❌ failed');
  });

  it('reports a manifest error with file, line and field, before anything runs', async () => {
    const r = await runner({ '.djinn.yml': 'stages:\n- build\njobs:\n- stage: build\n  commands: ["true"]\ndriver:\n  type: nosuch\n' });
    const res = await runMain(r, { inputs: { 'upload-artifacts': 'false' } });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/::error file=\.djinn\.yml,line=7,col=9::driver.type: unknown driver type/);
    expect(res.stdout).toMatch(/::error::\.djinn\.yml:7:9: driver.type: unknown driver type "nosuch"/);
    expect(res.stdout).not.toMatch(/\n\s+at /); // no stack trace
    expect(res.outputs.status).toBe('failed');
  });

  it('rejects a bad input naming it', async () => {
    const r = await runner({ '.djinn.yml': PASSING });
    const res = await runMain(r, { inputs: { timeout: 'soon', 'upload-artifacts': 'false' } });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/::error::input timeout: invalid duration "soon"/);
  });

  it('runs every manifest of a folder one after another, each with its own artifacts folder and summary section', async () => {
    const one = PASSING.replace('compile', 'first');
    const two = PASSING.replace('compile', 'second').replace('binary-bytes', 'other-bytes');
    const r = await runner({ '.djinn/alpha.yml': one, '.djinn/beta.yml': two });
    const res = await runMain(r, { inputs: { manifest: '.djinn', 'upload-artifacts': 'false' } });
    expect(res.code, res.stdout).toBe(0);
    const dir = res.outputs['artifacts-dir'];
    expect(await readFile(path.join(dir, 'alpha', 'app.bin'), 'utf8')).toBe('binary-bytes');
    expect(await readFile(path.join(dir, 'beta', 'app.bin'), 'utf8')).toBe('other-bytes');
    expect(res.stdout.indexOf('::group::.djinn/alpha.yml: build / first')).toBeLessThan(
      res.stdout.indexOf('::group::.djinn/beta.yml: build / second'),
    );
    expect(res.summary).toContain('.djinn/alpha.yml: passed');
    expect(res.summary).toContain('.djinn/beta.yml: passed');
  });

  it('accepts a glob and fails clearly when it matches nothing', async () => {
    const r = await runner({ 'ci/a.yml': PASSING, 'ci/b.yml': PASSING.replace('compile', 'other') });
    const ok = await runMain(r, { inputs: { manifest: 'ci/*.yml', 'upload-artifacts': 'false' } });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('::group::ci/b.yml: build / other');
    const r2 = await runner({});
    const bad = await runMain(r2, { inputs: { manifest: 'ci/*.yml', 'upload-artifacts': 'false' } });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('no manifest matches "ci/*.yml"');
  });
});

describe('workspace input', () => {
  const OWN = (dir: string) => `driver:
  type: os
sources:
- https://github.com/octo/example.git => ${dir}
stages:
- build
jobs:
- stage: build
  name: check
  commands:
  - cat ${dir}/uncommitted.txt
  - test -f ${dir}/.djinn.yml
`;

  it('auto: copies the checkout (with an uncommitted change) instead of cloning the workflow repository', async () => {
    const r = await runner({ '.djinn.yml': OWN('src') });
    await writeFile(path.join(r.workspace, 'uncommitted.txt'), 'local change 42\n');
    const res = await runMain(r, { inputs: { 'upload-artifacts': 'false' } });
    expect(res.code, res.stdout).toBe(0);
    expect(res.stdout).toContain('local change 42');
    expect(res.stdout).toMatch(/Copied the workspace into src: [\d.]+ (B|KiB|MiB) in /);
    expect(res.stdout).not.toContain('git clone');
    expect(res.summary).not.toContain('clone.1');
  });

  it('off: neither copies nor clones', async () => {
    const r = await runner({ '.djinn.yml': OWN('src').replace('cat src/uncommitted.txt', 'test ! -e src') });
    const res = await runMain(r, { inputs: { workspace: 'off', 'upload-artifacts': 'false' } });
    expect(res.code, res.stdout).toBe(1); // test -f src/.djinn.yml fails: nothing was copied
    expect(res.stdout).not.toContain('git clone');
    expect(res.stdout).toContain('workspace: off: not cloning https://github.com/octo/example.git');
  });

  it('clone: keeps the clone job of the setup stage', async () => {
    const r = await runner({ '.djinn.yml': OWN('src') });
    // No network here: the clone fails, which is what proves it was attempted.
    const res = await runMain(r, { inputs: { workspace: 'clone', 'upload-artifacts': 'false' }, env: { GIT_TERMINAL_PROMPT: '0' } });
    expect(res.stdout).toContain('::group::setup / clone.1');
    expect(res.stdout).toContain('git clone https://github.com/octo/example.git src');
  });
});

describe('action post step', () => {
  it('stops a process main left running (pidfile under the run folder) and prints the console tail of a failed boot', async () => {
    const r = await runner({});
    const runDir = path.join(r.temp, 'djinn-test');
    const build = path.join(runDir, 'build-1');
    await mkdir(build, { recursive: true });
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300000)', runDir], { stdio: 'ignore' });
    try {
      await writeFile(path.join(build, 'qemu.pid'), `${child.pid}\n`);
      await writeFile(path.join(build, 'console.log'), Array.from({ length: 100 }, (_, i) => `boot line ${i + 1}`).join('\n'));
      const state = { 'run-dir': runDir, 'boot-failed': JSON.stringify([build]) };
      await appendFile(
        r.files.state,
        Object.entries(state)
          .map(([k, v]) => `${k}<<EOF\n${v}\nEOF\n`)
          .join(''),
      );
      const exited = new Promise((res) => child.once('exit', res));
      const post = await runPost(r);
      expect(post.code, post.stdout + post.stderr).toBe(0);
      expect(post.stdout).toContain(`Stopping process ${child.pid}`);
      await exited;
      expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
      expect(post.stdout).toContain('boot line 100');
      expect(post.stdout).toContain('boot line 41');
      expect(post.stdout).not.toContain('boot line 40\n');
      expect(existsSync(runDir)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('leaves alone a pidfile whose process is not one of ours', async () => {
    const r = await runner({});
    const runDir = path.join(r.temp, 'djinn-test');
    await mkdir(runDir, { recursive: true });
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300000)'], { stdio: 'ignore' });
    try {
      await writeFile(path.join(runDir, 'other.pid'), `${child.pid}\n`);
      await appendFile(r.files.state, `run-dir<<EOF\n${runDir}\nEOF\n`);
      const post = await runPost(r);
      expect(post.code).toBe(0);
      expect(post.stdout).not.toContain('Stopping process');
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
