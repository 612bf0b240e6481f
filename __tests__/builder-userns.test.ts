// The image builder as a user with neither root nor sudo: mmdebstrap's unshare
// mode in a user namespace mapped from the user's /etc/subuid range. A real
// throwaway user on this machine builds the fast flavor with the CLI; the image
// boots, its files have the owners a root build gives them, and nothing in the
// user's home is left owned by anyone else. Needs root (useradd) and uidmap.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subordinateRange } from '../src/images/builder/privilege.js';
import { verifyImage } from '../src/images/verify.js';
import { CLI, runCli, type CliResult } from './helpers/cli.js';

const root = process.getuid?.() === 0;
const hasUidmap = existsSync('/usr/bin/newuidmap') && existsSync('/usr/bin/newgidmap');
const user = `djinn-ns-${process.pid}`;
let home = '';
let work = '';

/** The first id after every range already in the file, so that ours overlaps none. */
function freeRangeStart(file: string): number {
  let end = 200_000;
  for (const line of (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n')) {
    const [, start, count] = line.split(':');
    if (start && count) end = Math.max(end, Number(start) + Number(count));
  }
  return end;
}

function asUser(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const vars = Object.entries({ HOME: home, PATH: '/usr/local/bin:/usr/bin:/bin', ...env }).map(([k, v]) => `${k}=${v}`);
  return new Promise((resolve) => {
    const child = spawn('runuser', ['-u', user, '--', 'env', '-C', home, ...vars, process.execPath, CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Paths below `dir` (itself included) whose owner or group is not `uid`/`gid`. */
function foreignOwned(dir: string, uid: number, gid: number): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.uid !== uid || st.gid !== gid) out.push(`${p} (${st.uid}:${st.gid})`);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return out;
}

const show = (r: CliResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

describe.skipIf(!root || !hasUidmap)('image build as a user without sudo (user namespace)', () => {
  beforeAll(() => {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
    home = execFileSync('getent', ['passwd', user]).toString().split(':')[5];
    // useradd adds ranges itself when /etc/subuid exists; add them when it did not.
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      if (!subordinateRange(file, user, -1)) writeFileSync(file, `${user}:${freeRangeStart(file)}:65536\n`, { flag: 'a' });
    }
    work = mkdtempSync(path.join(os.tmpdir(), 'djinn-userns-test-'));
  });
  afterAll(() => {
    execFileSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
    // userdel takes the user's subordinate ranges away too; make sure.
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      const text = readFileSync(file, 'utf8');
      const kept = text
        .split('\n')
        .filter((l) => !l.startsWith(`${user}:`))
        .join('\n');
      if (kept !== text) writeFileSync(file, kept);
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('builds the fast flavor in its own home: owned by the user, nothing else left there, and it boots with root-owned files', async () => {
    // This user really has no passwordless sudo (or the test would not test the namespace).
    const sudo = await new Promise<number | null>((resolve) =>
      spawn('runuser', ['-u', user, '--', 'sudo', '-n', 'true'], { stdio: 'ignore' })
        .on('close', (c) => resolve(c))
        .on('error', () => resolve(127)),
    );
    expect(sudo).not.toBe(0);
    const out = path.join(home, 'images', 'fast.qcow2');
    const b = await asUser(['image', 'build', 'debian/stable', '-flavor', 'fast', '-o', out]);
    expect(b.code, show(b)).toBe(0);
    expect(b.stderr).toMatch(/installing packages with mmdebstrap \(unshare mode, in a user namespace\)/);
    expect(b.stdout.trim()).toBe(out);
    const uid = Number(execFileSync('id', ['-u', user]).toString());
    const gid = Number(execFileSync('id', ['-g', user]).toString());
    expect(foreignOwned(home, uid, gid)).toEqual([]);
    expect(readdirSync(path.dirname(out))).toEqual(['fast.qcow2']);
    expect((await verifyImage(out, 'qcow2')).format).toBe('qcow2');

    // Boot it and look at the owners inside: those of a root build, and no file of an unmapped or host id.
    const disks = path.join(work, 'disks');
    mkdirSync(path.join(disks, 'qemu', 'x86_64', 'debian'), { recursive: true });
    execFileSync('cp', ['--sparse=always', out, path.join(disks, 'qemu', 'x86_64', 'debian', 'stable')]);
    writeFileSync(
      path.join(work, '.djinn.yml'),
      [
        'driver:',
        '  type: qemu',
        '  image: debian/stable',
        'stages: [s]',
        'jobs:',
        '- stage: s',
        '  commands:',
        '  - stat -c "%n %u:%g %a" /etc/shadow /root/.ssh /root/.ssh/authorized_keys /usr/bin/su /etc/djinn/rc',
        `  - echo foreign=$(find / -xdev \\( -uid 65534 -o -uid 65535 -o -uid 65536 -o -uid ${uid} -o -nouser -o ` +
          `-nogroup \\) -print | head -n 5 | tr '\\n' ' ')`,
        '',
      ].join('\n'),
    );
    const r = await runCli(
      [
        '-manifest',
        path.join(work, '.djinn.yml'),
        '-disks',
        disks,
        '-artifacts',
        work,
        '-objects',
        work,
        '-image-build',
        'never',
        '-warm',
        'off',
        '-cache-dir',
        path.join(work, 'cache'),
      ],
      { cwd: work },
    );
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^\/etc\/shadow 0:42 640$/m);
    expect(r.stdout).toMatch(/^\/root\/\.ssh 0:0 700$/m);
    expect(r.stdout).toMatch(/^\/root\/\.ssh\/authorized_keys 0:0 600$/m);
    expect(r.stdout).toMatch(/^\/usr\/bin\/su 0:0 4755$/m);
    expect(r.stdout).toMatch(/^\/etc\/djinn\/rc 0:0 755$/m);
    expect(r.stdout).toMatch(/^foreign=\s*$/m);
  }, 900_000);

  it('names the three ways when the user has no subordinate range', async () => {
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      writeFileSync(
        file,
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => !l.startsWith(`${user}:`))
          .join('\n'),
      );
    }
    const out = path.join(home, 'again', 'x.qcow2');
    const b = await asUser(['image', 'build', 'debian/stable', '-o', out]);
    expect(b.code, show(b)).toBe(1);
    expect(b.stderr).toMatch(
      /Either run it as root; or allow this user passwordless sudo .*; or let it use unprivileged user namespaces: the package uidmap/,
    );
    expect(b.stderr).toContain(`/etc/subuid has no range for ${user}`);
    expect(b.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(path.join(home, 'again'))).toBe(false);
  });
});
