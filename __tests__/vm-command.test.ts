// The djinn-vm command (the bundle in dist/, as the wrapper the action writes
// runs it) against a real OpenSSH sshd on loopback standing in for a kept
// machine: scripts and commands run as jobs do, statuses pass through, secrets
// are masked even when split across chunks, cp copies files and folders both
// ways. The masker and the argument parser also on their own.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { startSshd, type Sshd } from './helpers/sshd.js';
import { Masker } from '../src/vm-command/mask.js';
import { parseArgs } from '../src/vm-command/main.js';
import type { MachineFile } from '../src/vm-command/machine.js';

const COMMAND = path.join(ROOT, 'dist', 'djinn-vm.js');

describe('Masker', () => {
  it('masks every secret, also one split across chunks, and holds back no more than a possible start of one', () => {
    const m = new Masker(['hunter2', 'hunt']);
    const out = [m.push(Buffer.from('a hun')), m.push(Buffer.from('ter2 b hu')), m.push(Buffer.from('nt c hx')), m.end()];
    expect(out.join('')).toBe('a *** b *** c hx');
    // The first chunk shows everything before the possible start of a secret.
    expect(out[0]).toBe('a ');
  });
  it('passes text through untouched without secrets, multi-byte characters split across chunks included', () => {
    const m = new Masker([]);
    const euro = Buffer.from('€');
    expect(m.push(euro.subarray(0, 1)) + m.push(euro.subarray(1)) + m.end()).toBe('€');
  });
});

describe('djinn-vm arguments', () => {
  it('reads the three forms and refuses the rest', () => {
    expect(parseArgs(['/tmp/x.sh'])).toEqual({ kind: 'script', file: '/tmp/x.sh' });
    expect(parseArgs(['exec', '--', 'ls', '-l'])).toEqual({ kind: 'exec', argv: ['ls', '-l'] });
    expect(parseArgs(['cp', 'a', ':b'])).toEqual({ kind: 'cp', from: 'a', to: ':b' });
    expect(() => parseArgs(['cp', 'a', 'b'])).toThrow(/exactly one of the two paths names the machine/);
    expect(() => parseArgs(['cp', ':a', ':b'])).toThrow(/exactly one/);
    expect(() => parseArgs(['exec', '--'])).toThrow(/give the command to run/);
    expect(() => parseArgs(['x.sh', 'extra'])).toThrow(/unexpected arguments/);
  });
});

describe('djinn-vm against a machine on loopback', () => {
  let sshd: Sshd;
  let dir: string;
  let machineFile: string;
  const secret = `sec-${randomBytes(5).toString('hex')}`;

  beforeAll(async () => {
    sshd = await startSshd();
    dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-vm-cmd-'));
    const machine: MachineFile = {
      version: 1,
      host: '127.0.0.1',
      port: sshd.port,
      user: 'root',
      keyFile: sshd.ed25519KeyFile,
      pid: sshd.pid,
      startedAt: Date.now(),
      keptAt: Date.now(),
      env: [
        { key: 'FROM_MANIFEST', value: 'manifest value' },
        { key: 'TOKEN', value: secret },
      ],
      masks: [secret],
      commandsLog: path.join(dir, 'commands.log'),
    };
    machineFile = path.join(dir, 'machine.json');
    await writeFile(machineFile, JSON.stringify(machine), { mode: 0o600 });
  });
  afterAll(async () => {
    await sshd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function djinnVm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [COMMAND, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, DJINN_VM_MACHINE: machineFile, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  }

  it('runs a script file as a job: home folder, env, set -ex, exit status passed through, secrets masked', async () => {
    const script = path.join(dir, 'step.sh');
    await writeFile(script, 'pwd\necho "$FROM_MANIFEST"\necho "token: $TOKEN"\nexit 7\necho never\n');
    const r = await djinnVm([script]);
    expect(r.code, r.stderr).toBe(7);
    // Root's home (the test sshd shows its own folder there).
    expect(r.stdout).toContain('+ pwd\n/root\n');
    expect(r.stdout).toContain('+ echo manifest value\nmanifest value\n');
    expect(r.stdout).toContain('+ echo token: ***\ntoken: ***\n');
    expect(r.stdout).not.toContain(secret);
    expect(r.stdout).not.toContain('never');
    // The secret leaves the machine in two writes, a moment apart.
    const split = await djinnVm([
      'exec',
      '--',
      'sh',
      '-c',
      'printf %s "${TOKEN%????}"; sleep 0.3; printf "%s\\n" "${TOKEN#${TOKEN%????}}"',
    ]);
    expect(split.stdout).toBe('***\n');
    // Outside the Actions runner no ::stop-commands:: fence is printed; on it, there is one.
    expect(r.stdout).not.toContain('::stop-commands::');
    const onRunner = await djinnVm(['exec', '--', 'echo', '::warning::x'], { GITHUB_ACTIONS: 'true' });
    expect(onRunner.stdout).toMatch(/^::stop-commands::([0-9a-f]{32})\n::warning::x\n\n::\1::\n$/);
  });

  it('exec runs argv as given, quoting and all', async () => {
    const r = await djinnVm(['exec', '--', 'sh', '-c', 'printf "[%s]" "$@"; exit 3', 'sh', 'a b', "it's", '$HOME']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("[a b][it's][$HOME]");
  });

  it('cp copies folders and files in and out; into an existing folder under their own name', async () => {
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'sub'), { recursive: true });
    const blob = randomBytes(9 << 20);
    await writeFile(path.join(tree, 'sub', 'blob.bin'), blob);
    await writeFile(path.join(tree, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('sub/blob.bin', path.join(tree, 'link'));
    expect((await djinnVm(['cp', tree, ':copied'])).code).toBe(0);
    expect((await readFile(path.join(sshd.home, 'copied', 'sub', 'blob.bin'))).equals(blob)).toBe(true);
    await mkdir(path.join(sshd.home, 'existing'));
    const one = await djinnVm(['cp', path.join(tree, 'run.sh'), ':existing']);
    expect(one.code, one.stderr).toBe(0);
    expect(await readFile(path.join(sshd.home, 'existing', 'run.sh'), 'utf8')).toBe('#!/bin/sh\n');

    const back = path.join(dir, 'back');
    const out = await djinnVm(['cp', ':copied/', back]);
    expect(out.code, out.stderr).toBe(0);
    expect((await readFile(path.join(back, 'sub', 'blob.bin'))).equals(blob)).toBe(true);
    expect((await lstat(path.join(back, 'run.sh'))).mode & 0o111).not.toBe(0);
    expect(await readlink(path.join(back, 'link'))).toBe('sub/blob.bin');
    const into = await djinnVm(['cp', ':existing/run.sh', back + '/sub']);
    expect(into.code, into.stderr).toBe(0);
    expect(await readFile(path.join(back, 'sub', 'run.sh'), 'utf8')).toBe('#!/bin/sh\n');

    const missing = await djinnVm(['cp', ':nothing-here', back]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such file or folder in the machine: nothing-here');
    const noLocal = await djinnVm(['cp', path.join(dir, 'absent'), ':x']);
    expect(noLocal.code).toBe(1);
    expect(noLocal.stderr).toContain('no such file or folder:');
  });

  it('counts the commands it served, and says so when there is no machine', async () => {
    const log = await readFile(path.join(dir, 'commands.log'), 'utf8');
    expect(log.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(9);
    const none = await djinnVm(['exec', '--', 'true'], { DJINN_VM_MACHINE: path.join(dir, 'gone.json') });
    expect(none.code).toBe(255);
    expect(none.stderr).toMatch(/The kept machine is gone/);
  });
});
