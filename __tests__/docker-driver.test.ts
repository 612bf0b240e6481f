// The docker driver against a real Docker engine (scripts/dockerd.sh) and a
// real image (mmdebstrap tarball imported through the engine's API), driven
// through the bundled CLI exactly as a user runs it. Nothing is mocked.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from './helpers/cli.js';
import { leftovers, startTestEngine, stopTestEngine, type TestEngine } from './helpers/docker.js';

let engine: TestEngine | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  engine = await startTestEngine();
}, 20 * 60_000);

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await stopTestEngine(engine);
});

afterEach(async () => {
  // Every build removes its containers and volume, whatever happened.
  if (engine) expect(await leftovers(engine.docker)).toEqual([]);
});

function eng(): TestEngine {
  if (!engine) throw new Error('no engine');
  return engine;
}

/** A fresh folder with the manifest, an empty config home (no user driver.conf) and objects/artifacts folders. */
async function project(manifest: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-docker-test-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, '.djinn.yml'), manifest);
  mkdirSync(path.join(dir, 'config'));
  mkdirSync(path.join(dir, 'objects'));
  return dir;
}

function cliEnv(dir: string): NodeJS.ProcessEnv {
  return { DOCKER_HOST: eng().host, XDG_CONFIG_HOME: path.join(dir, 'config'), DJINN_HOST_ONLY: 'host-secret-value' };
}

function build(dir: string, extra: string[] = []) {
  return runCli(['-objects', 'objects', '-artifacts', 'artifacts', ...extra], { cwd: dir, env: cliEnv(dir) });
}

const AWKWARD = `it's "quoted" $HOME \`id\` ; & | \\ tab\there ünïcödé = end`;

describe('docker driver', () => {
  it('carries state across stages in the workspace volume, with env, objects, sources and artifact globs', async () => {
    const dir = await project(`driver:
  type: docker
  image: ${eng().image}
  workspace: /workspace
env:
  - ${JSON.stringify(`AWKWARD=${AWKWARD}`)}
  - "MULTI=line one\\nline two"
objects:
  - data.bin => in/data.bin
  - tool.sh => tool.sh
  - repo.bundle => /workspace/repo.bundle
sources:
  - /workspace/repo.bundle => src
stages:
  - make
  - check
jobs:
  - stage: make
    commands:
      - mkdir -p out
      - printf '%s' "$AWKWARD" > out/awkward.txt
      - printf '%s' "$MULTI" > out/multi.txt
      - env > out/env.log
      - sh tool.sh > out/tool.txt
      - sha256sum in/data.bin | cut -d' ' -f1 > out/sum.txt
      - cat src/hello.txt > out/clone.txt
      - ln -s sum.txt out/link.txt
      - echo first > state
      - mkdir -p "logs/a b" logs/c/dir.log
      - echo one > "logs/a b/one.log"
      - echo two > logs/c/two.log
    artifacts:
      - out/*.txt => txt/*
      - out/env.log
      - logs/*/*.log => logs/*
  - stage: check
    commands:
      - echo second >> state
      - echo "cwd=$(pwd)"
    artifacts:
      - state => final/state
`);
    const objects = path.join(dir, 'objects');
    const data = randomBytes(100_000);
    writeFileSync(path.join(objects, 'data.bin'), data);
    writeFileSync(path.join(objects, 'tool.sh'), 'echo "tool ran"\n');
    const repo = path.join(dir, 'repo');
    mkdirSync(repo);
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: repo });
    git('init', '-q');
    writeFileSync(path.join(repo, 'hello.txt'), 'cloned\n');
    git('add', '.');
    git('commit', '-qm', 'one');
    git('bundle', 'create', '-q', path.join(objects, 'repo.bundle'), '--all');

    const r = await build(dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Running with driver docker\.\.\.$/m);
    expect(r.stdout).toMatch(/^Using docker API version \d+\.\d+\.\.\.$/m);
    expect(r.stdout).toContain(`Using image ${eng().image} - sha256:`);
    expect(r.stdout).toMatch(/==> Running job clone\.1 in stage setup/);
    expect(r.stdout).toContain('cwd=/workspace');

    const art = (p: string) => readFileSync(path.join(dir, 'artifacts', p));
    expect(art('txt/awkward.txt').toString()).toBe(AWKWARD);
    expect(art('txt/multi.txt').toString()).toBe('line one\nline two');
    expect(art('txt/tool.txt').toString()).toBe('tool ran\n');
    expect(art('txt/sum.txt').toString().trim()).toBe(
      execFileSync('sha256sum', [path.join(objects, 'data.bin')])
        .toString()
        .split(' ')[0],
    );
    expect(art('txt/clone.txt').toString()).toBe('cloned\n');
    // A symlink in the workspace arrives as the file it points to.
    expect(art('txt/link.txt').toString()).toBe(art('txt/sum.txt').toString());
    expect(existsSync(path.join(dir, 'artifacts', 'txt', 'env.log'))).toBe(false); // *.txt only
    expect(art('final/state').toString()).toBe('first\nsecond\n');
    // Globs over nested folders (one with a space in its name); folders are not artifacts.
    expect(art('logs/one.log').toString()).toBe('one\n');
    expect(art('logs/two.log').toString()).toBe('two\n');
    expect(existsSync(path.join(dir, 'artifacts', 'logs', 'dir.log'))).toBe(false);
    // The manifest's env and nothing of the host's.
    const env = art('env.log').toString();
    expect(env).toContain('AWKWARD=');
    expect(env).not.toContain('host-secret-value');
    expect(env).not.toContain('DJINN_HOST_ONLY');
    expect(env).not.toContain('XDG_CONFIG_HOME');
  });

  it('fails the build on a failing job, skips what follows and still collects its artifacts', async () => {
    const dir = await project(`driver: {type: docker, image: ${eng().image}, workspace: /w}
stages: [one, two]
jobs:
  - stage: one
    commands:
      - echo partial > log.txt
      - exit 3
    artifacts: [log.txt]
  - stage: two
    commands: [echo never-runs]
`);
    const r = await build(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/one\.1\s+failed/);
    expect(r.stdout).toMatch(/two\.1\s+skipped/);
    expect(r.stdout).not.toContain('+ echo never-runs');
    expect(r.stderr).toContain('exit status 3');
    expect(readFileSync(path.join(dir, 'artifacts', 'log.txt'), 'utf8')).toBe('partial\n');
  });

  it('passes with failures when the failing stage allows failures', async () => {
    const dir = await project(`driver: {type: docker, image: ${eng().image}, workspace: /w}
stages: [flaky, after]
allow_failures: [flaky]
jobs:
  - stage: flaky
    commands: [exit 1]
  - stage: after
    commands: [echo after-ran]
`);
    const r = await build(dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/flaky\.1\s+passed_with_failures/);
    expect(r.stdout).toMatch(/after\.1\s+passed/);
    expect(r.stdout).toContain('after-ran');
  });

  it('stops the container of a job that runs past -job-timeout', async () => {
    const dir = await project(`driver: {type: docker, image: ${eng().image}, workspace: /w}
stages: [slow]
jobs:
  - stage: slow
    commands: [echo started, sleep 600, echo not-reached]
`);
    const r = await build(dir, ['-job-timeout', '3s']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/slow\.1\s+timed_out/);
    expect(r.stdout).toContain('+ echo started');
    expect(r.stdout).not.toContain('+ echo not-reached');
  });

  it('stops the job and cleans up on SIGTERM, exiting 143', async () => {
    const dir = await project(`driver: {type: docker, image: ${eng().image}, workspace: /w}
stages: [long]
jobs:
  - stage: long
    commands: [echo ready-for-signal, sleep 600]
`);
    const run = startCli(['-objects', 'objects', '-artifacts', 'artifacts'], { cwd: dir, env: cliEnv(dir) });
    try {
      await run.waitFor(/\+ sleep 600/);
      // While the job runs its container and the volume exist.
      expect((await leftovers(eng().docker)).length).toBeGreaterThanOrEqual(2);
      run.child.kill('SIGTERM');
      const r = await run.done;
      expect(r.code).toBe(143);
      expect(r.stderr).toContain('SIGTERM');
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      await run.done;
    }
  });

  it('says the image is missing and how to import one when it cannot be pulled', async () => {
    const dir = await project(`driver: {type: docker, image: djinn-test/absent:nope, workspace: /w}
stages: [a]
jobs: [{stage: a, commands: [echo hi]}]
`);
    const r = await build(dir);
    expect(r.code).toBe(1);
    const all = r.stdout + r.stderr;
    expect(all).toContain('Pulling image djinn-test/absent:nope...');
    expect(all).toContain('image djinn-test/absent:nope is missing');
    expect(all).toContain('docker import rootfs.tar djinn-test/absent:nope');
  });

  it('honours driver.conf host and version over DOCKER_HOST', async () => {
    const manifest = `driver: {type: docker, image: ${eng().image}, workspace: /w}
stages: [a]
jobs: [{stage: a, commands: [echo conf-ok]}]
`;
    const dir = await project(manifest);
    writeFileSync(path.join(dir, 'driver.conf'), `driver docker {\n  host "${eng().host}"\n  version "1.40"\n}\n`);
    const ok = await runCli(['-driver', 'driver.conf', '-objects', 'objects', '-artifacts', 'artifacts'], {
      cwd: dir,
      env: { ...cliEnv(dir), DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Using docker API version 1.40...');
    expect(ok.stdout).toContain('conf-ok');

    writeFileSync(path.join(dir, 'driver.conf'), 'driver docker {\n  host "unix:///nonexistent/docker.sock"\n}\n');
    const bad = await runCli(['-driver', 'driver.conf', '-objects', 'objects', '-artifacts', 'artifacts'], { cwd: dir, env: cliEnv(dir) });
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toContain('cannot reach the Docker engine at unix:///nonexistent/docker.sock');
  });

  it('rejects a relative workspace and an object outside the workspace clearly', async () => {
    const rel = await project(`driver: {type: docker, image: ${eng().image}, workspace: work}
stages: [a]
jobs: [{stage: a, commands: [echo hi]}]
`);
    const r = await build(rel);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\.djinn\.yml:1:\d+: driver\.workspace: driver docker: workspace "work" must be an absolute path/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace

    const out = await project(`driver: {type: docker, image: ${eng().image}, workspace: /w}
objects: [f.txt => /etc/f.txt]
stages: [a]
jobs: [{stage: a, commands: [echo hi]}]
`);
    writeFileSync(path.join(out, 'objects', 'f.txt'), 'x');
    const o = await build(out);
    expect(o.stderr).toContain('is outside the workspace /w');
  });
});
