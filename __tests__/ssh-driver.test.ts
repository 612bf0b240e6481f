// The `ssh` driver end to end, through the bundled CLI (dist/cli.js, built by
// `npm run build`), against a real OpenSSH sshd on loopback (helpers/sshd.ts).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, startCli } from './helpers/cli.js';
import { freePort, startSshd, type Sshd } from './helpers/sshd.js';

let sshd: Sshd;
let work: string;

function setup(name: string, manifest: string, conf?: string) {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'objects'), { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), manifest);
  writeFileSync(path.join(dir, 'driver.conf'), conf ?? `driver ssh {\n  user "root"\n  key "${sshd.ed25519KeyFile}"\n  timeout 20s\n}\n`);
  const args = [
    '-manifest',
    path.join(dir, '.djinn.yml'),
    '-driver',
    path.join(dir, 'driver.conf'),
    '-artifacts',
    path.join(dir, 'out'),
    '-objects',
    path.join(dir, 'objects'),
  ];
  return { dir, args };
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  sshd = await startSshd();
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-ssh-driver-'));
});

afterAll(async () => {
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('ssh driver through dist/cli.js', () => {
  it('runs a build: objects in, env exact, stages in order, artifacts out by glob', async () => {
    const { dir, args } = setup(
      'full',
      `driver:
  type: ssh
  address: 127.0.0.1:${sshd.port}
env:
  - GREETING=hello   world
  - TRICKY=it's $HOME "quoted" \\back
objects:
  - tool.sh => bin/tool.sh
stages:
  - build
  - package
jobs:
  - stage: build
    commands:
      - ./bin/tool.sh > made.txt
      - printf '%s|%s\\n' "$GREETING" "$TRICKY"
  - stage: package
    commands:
      - mkdir -p dist
      - cp made.txt dist/one.txt
      - cp made.txt dist/two.txt
    artifacts:
      - dist/*.txt => files/*
      - made.txt
      - nothing/*.zip
`,
    );
    writeFileSync(path.join(dir, 'objects', 'tool.sh'), '#!/bin/sh\necho tool ran as $(id -un)\n');
    const r = await runCli(args);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Running with driver ssh...');
    expect(r.stdout).toMatch(/Host key of 127\.0\.0\.1:\d+ is ssh-ed25519 SHA256:/);
    expect(r.stdout).toContain('Established SSH connection to machine as root...');
    expect(r.stdout).toContain('Placing object tool.sh => bin/tool.sh');
    expect(r.stdout).toContain(`hello   world|it's $HOME "quoted" \\back`);
    expect(r.stdout.indexOf('in stage build')).toBeLessThan(r.stdout.indexOf('in stage package'));
    expect(r.stderr).toMatch(/warning: .*nothing\/\*\.zip: no file matches the pattern/);
    for (const f of ['files/one.txt', 'files/two.txt', 'made.txt'])
      expect(readFileSync(path.join(dir, 'out', f), 'utf8')).toBe('tool ran as root\n');
    expect(statSync(path.join(sshd.home, 'bin', 'tool.sh')).mode & 0o777).toBe(0o700);
  });

  it('fails the build on a non-zero exit, skipping later jobs, with exit status 1', async () => {
    const { args } = setup(
      'fail',
      `driver:
  type: ssh
  address: 127.0.0.1:${sshd.port}
stages: [a, b]
jobs:
  - stage: a
    name: broken
    commands:
      - exit 7
  - stage: b
    commands:
      - echo never
`,
    );
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job broken in stage a: exit status 7/);
    expect(r.stdout).not.toContain('+ echo never');
    expect(r.stdout).toMatch(/b\s+\S+\s+skipped/);
  });

  it('stops a job that outlives -job-timeout and leaves nothing running', async () => {
    const { args } = setup(
      'timeout',
      `driver:
  type: ssh
  address: 127.0.0.1:${sshd.port}
stages: [a]
jobs:
  - stage: a
    name: sleepy
    commands:
      - echo $$ > sleepy.pid
      - sleep 303
`,
    );
    const r = await runCli([...args, '-job-timeout', '2s']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/sleepy\s+timed_out/);
    const pid = Number(readFileSync(path.join(sshd.home, 'sleepy.pid'), 'utf8'));
    let gone = false;
    for (let i = 0; i < 40 && !gone; i++) {
      try {
        process.kill(-pid, 0);
        await new Promise((res) => setTimeout(res, 100));
      } catch {
        gone = true;
      }
    }
    expect(gone).toBe(true);
  });

  it('a cancelled (SIGINT) build closes the connection and exits', async () => {
    const { args } = setup(
      'cancel',
      `driver:
  type: ssh
  address: 127.0.0.1:${sshd.port}
stages: [a]
jobs:
  - stage: a
    commands:
      - echo $$ > cancel.pid
      - sleep 304
`,
    );
    const run = startCli(args);
    try {
      await run.waitFor(/\+ sleep 304/);
      run.child.kill('SIGINT');
      const r = await run.done;
      expect(r.code).toBe(130);
    } finally {
      run.child.kill('SIGKILL');
    }
    // The job's processes were stopped before the connection closed.
    const pid = Number(readFileSync(path.join(sshd.home, 'cancel.pid'), 'utf8'));
    let alive = true;
    for (let i = 0; i < 40 && alive; i++) {
      try {
        process.kill(-pid, 0);
        await new Promise((res) => setTimeout(res, 100));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
    // The server's per-connection processes go once our connection is closed.
    for (let i = 0; i < 30 && sshd.sessionPids().length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(sshd.sessionPids()).toEqual([]);
  });

  it('gives a clear error for a machine that is not there, after the connect timeout', async () => {
    const port = await freePort();
    const { args } = setup(
      'absent',
      `driver:\n  type: ssh\n  address: 127.0.0.1:${port}\nstages: [a]\njobs:\n  - stage: a\n    commands: ["true"]\n`,
      'driver ssh { timeout 2s }\n',
    );
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`Timed out trying to connect to 127\\.0\\.0\\.1:${port} after \\d+s \\(connection refused\\)`));
  });

  it('rejects a malformed address with the manifest position and status 2', async () => {
    const { args } = setup(
      'badaddr',
      `driver:\n  type: ssh\n  address: "127.0.0.1:99999"\nstages: [a]\njobs:\n  - stage: a\n    commands: ["true"]\n`,
    );
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\.djinn\.yml:2:\d+: driver\.address: expected HOST or HOST:PORT .*found "127\.0\.0\.1:99999"/);
  });

  it('says which key file it cannot read', async () => {
    const { args } = setup(
      'nokey',
      `driver:\n  type: ssh\n  address: 127.0.0.1:${sshd.port}\nstages: [a]\njobs:\n  - stage: a\n    commands: ["true"]\n`,
      'driver ssh { key "/nonexistent/id_ed25519" }\n',
    );
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot read the SSH key file /nonexistent/id_ed25519: no such file.');
  });
});
