// keep: true, end to end through the bundled action as the runner runs it: the
// main step runs a manifest in our test image (TCG) and leaves the machine up;
// later steps use the djinn-vm command it put on GITHUB_PATH (a script step as
// `shell: djinn-vm {0}` runs it, exec, cp both ways); the post step stops the
// machine and reports in the step summary. Nothing of GitHub's is mocked: these
// steps need no GitHub service.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRunner, runMain, runPost, type Runner } from './helpers/action-harness.js';
import { qemuUnder, runScriptStep, runStepCommand } from './helpers/later-step.js';
import { ROOT } from './helpers/cli.js';
import { testDisks } from './helpers/vm.js';

const SECRET = `tok-${randomBytes(6).toString('hex')}`;

const MANIFEST = `driver:
  type: qemu
  image: debian/stable
env:
- GREETING=hello from the manifest
stages:
- build
jobs:
- stage: build
  name: make
  commands:
  - echo "written by the manifest's job" > made.txt
`;

let disks: string;
const runners: Runner[] = [];
beforeAll(() => {
  disks = testDisks();
});
afterAll(async () => {
  for (const r of runners) {
    // Never leave a machine behind, whatever failed above.
    for (const pid of qemuUnder(r.root)) process.kill(pid, 'SIGKILL');
    await r.cleanup();
  }
});

async function runner(manifest?: string): Promise<Runner> {
  const r = await makeRunner();
  runners.push(r);
  if (manifest) await writeFile(path.join(r.workspace, '.djinn.yml'), manifest);
  return r;
}

const base = () => ({ kvm: 'off', disks, 'upload-artifacts': 'false', keep: 'true' });

describe('keep: one machine for several steps', () => {
  it('keeps the machine after the build for djinn-vm steps, and the post step stops it', async () => {
    const r = await runner(MANIFEST);
    const main = await runMain(r, { inputs: { ...base(), 'warm-start': 'off', env: `API_TOKEN=${SECRET}` } });
    expect(main.code, main.stdout + main.stderr).toBe(0);
    expect(main.outputs.status).toBe('passed');
    expect(main.outputs['ssh-port']).toMatch(/^\d+$/);
    // The main step's process is gone; its machine is not.
    expect(qemuUnder(r.root)).toHaveLength(1);
    expect((await stat(main.outputs['ssh-key'])).mode & 0o777).toBe(0o600);
    expect(await readFile(r.files.path, 'utf8')).toMatch(/kept\/bin\n$/);
    // Secrets stay out of the job's environment: only where the machine is goes there.
    expect(await readFile(r.files.env, 'utf8')).not.toContain(SECRET);

    const script = await runScriptStep(
      r,
      'cat made.txt\npwd\nid -u\necho "greeting: $GREETING"\necho "token: $API_TOKEN"\necho "::set-output name=x::from the guest"\n',
    );
    expect(script.code, script.stdout + script.stderr).toBe(0);
    expect(script.stdout).toContain("written by the manifest's job");
    expect(script.stdout).toMatch(/^\/root$/m);
    expect(script.stdout).toMatch(/^0$/m);
    expect(script.stdout).toContain('greeting: hello from the manifest');
    expect(script.stdout).toContain('token: ***');
    expect(script.stdout).not.toContain(SECRET);
    // A guest's workflow command is fenced off by ::stop-commands:: ... ::token::.
    const fenced = /::stop-commands::([0-9a-f]+)\n[\s\S]*::set-output name=x::[\s\S]*::\1::/;
    expect(script.stdout).toMatch(fenced);

    const seven = await runScriptStep(r, 'echo "about to fail"\nexit 7\necho never\n');
    expect(seven.code).toBe(7);
    expect(seven.stdout).toContain('about to fail');
    expect(seven.stdout).not.toMatch(/^never$/m);

    const exec = await runStepCommand(r, 'djinn-vm', ['exec', '--', 'sh', '-c', 'echo "$1 in $(pwd)"; exit 3', 'sh', 'two words']);
    expect(exec.code).toBe(3);
    expect(exec.stdout).toContain('two words in /root');

    // cp in: a folder with a nested file bigger than a few chunks, and a single file into a folder.
    const tree = path.join(r.root, 'tree');
    await mkdir(path.join(tree, 'sub'), { recursive: true });
    const blob = randomBytes(3 << 20);
    await writeFile(path.join(tree, 'sub', 'blob.bin'), blob);
    await writeFile(path.join(tree, 'a.txt'), 'file a\n');
    const cpIn = await runStepCommand(r, 'djinn-vm', ['cp', tree, ':copied']);
    expect(cpIn.code, cpIn.stderr).toBe(0);
    const one = await runStepCommand(r, 'djinn-vm', ['cp', path.join(tree, 'a.txt'), ':/tmp/']);
    expect(one.code, one.stderr).toBe(0);
    const check = await runStepCommand(r, 'djinn-vm', [
      'exec',
      '--',
      'sh',
      '-c',
      'cat copied/a.txt /tmp/a.txt; wc -c < copied/sub/blob.bin; echo made-in-guest > copied/new.txt',
    ]);
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toContain('file a\nfile a\n');
    expect(check.stdout).toContain(String(blob.length));

    // cp out: the folder to a new name, and one file into an existing folder.
    const back = path.join(r.root, 'back');
    const cpOut = await runStepCommand(r, 'djinn-vm', ['cp', ':copied/', back]);
    expect(cpOut.code, cpOut.stderr).toBe(0);
    expect((await readFile(path.join(back, 'sub', 'blob.bin'))).equals(blob)).toBe(true);
    expect(await readFile(path.join(back, 'new.txt'), 'utf8')).toBe('made-in-guest\n');
    const made = await runStepCommand(r, 'djinn-vm', ['cp', ':made.txt', r.root]);
    expect(made.code, made.stderr).toBe(0);
    expect(await readFile(path.join(r.root, 'made.txt'), 'utf8')).toBe("written by the manifest's job\n");
    const missing = await runStepCommand(r, 'djinn-vm', ['cp', ':no/such/file', back]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such file or folder in the machine: no/such/file');

    const post = await runPost(r);
    expect(post.code, post.stdout + post.stderr).toBe(0);
    // script, exit 7, exec, cp in, cp one, check, cp out, cp made, cp missing
    expect(post.summary).toMatch(/The kept machine ran for .* and served 9 djinn-vm commands; the post step stopped it\./);
    expect(qemuUnder(r.root)).toEqual([]);

    // The post step removed the command with the machine; the bundle itself says the machine is gone.
    const wrapper = path.join((await readFile(r.files.path, 'utf8')).trim(), 'djinn-vm');
    expect(existsSync(wrapper)).toBe(false);
    const after = await runStepCommand(r, process.execPath, [path.join(ROOT, 'dist', 'djinn-vm.js'), 'exec', '--', 'true']);
    expect(after.code).toBe(255);
    expect(after.stderr).toMatch(/The kept machine is gone/);
  }, 420_000);

  it("manifest: '' boots the image only; a kept machine may come from a warm-start state", async () => {
    const r = await runner();
    const main = await runMain(r, { inputs: { ...base(), manifest: '', memory: '512', cpus: '1' } });
    expect(main.code, main.stdout + main.stderr).toBe(0);
    expect(main.outputs['machine-start']).toMatch(/^(booted|restored)$/);
    const exec = await runStepCommand(r, 'djinn-vm', ['exec', '--', 'cat', '/etc/debian_version']);
    expect(exec.code, exec.stdout + exec.stderr).toBe(0);
    expect(exec.stdout).toMatch(/^\d+/m);
    const post = await runPost(r);
    expect(post.code).toBe(0);
    expect(post.summary).toContain('served 1 djinn-vm command;');
    expect(qemuUnder(r.root)).toEqual([]);
  }, 420_000);

  it('refuses keep with a driver that cannot keep its machine, before anything starts', async () => {
    const r = await runner('driver:\n  type: os\njobs:\n- stage: x\n  name: y\n  commands: ["true"]\nstages: [x]\n');
    const main = await runMain(r, { inputs: base() });
    expect(main.code).toBe(1);
    expect(main.stdout).toMatch(/input keep: true needs the qemu driver; \.djinn\.yml uses the os driver/);
  });
});
