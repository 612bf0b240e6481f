// Stage states through the bundled CLI with real VMs (TCG), one build after
// another on one cache folder: the first saves the machine after `deps`, the
// next ones start from it (cached jobs, kept artifact placed again, guest clock
// set, randomness fresh per restore, a new commit of the cloned source seen),
// a change to a later stage still hits, and -cache-max-age 0 or a changed env
// value runs `deps` again, and so does a damaged state (one warning).
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectArgs, runCli, type CliResult } from './helpers/cli.js';
import { staticServer, testDisks } from './helpers/vm.js';

let work: string;
let disks: string;
let server: { port: number; close: () => Promise<void> };
let repo: string;
let served: string;

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
const git = (cwd: string, ...a: string[]) => execFileSync('git', a, { cwd, env: gitEnv, stdio: 'pipe' }).toString().trim();

/** Commits `text` as version.txt and publishes it to the served bare repository. */
function commit(text: string): void {
  writeFileSync(path.join(repo, 'version.txt'), `${text}\n`);
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', text);
  git(repo, 'push', '-q', '--force', path.join(served, 'project.git'), 'main');
  git(path.join(served, 'project.git'), 'update-server-info');
}

beforeAll(async () => {
  disks = testDisks();
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-stage-vm-'));
  repo = path.join(work, 'repo');
  served = path.join(work, 'served');
  mkdirSync(repo);
  mkdirSync(served);
  git(repo, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(repo, 'version.txt'), 'v1\n');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'v1');
  git(work, 'clone', '-q', '--bare', repo, path.join(served, 'project.git'));
  git(path.join(served, 'project.git'), 'update-server-info');
  server = await staticServer(served);
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

function manifest(opts: { env?: string; buildLine?: string } = {}): string {
  return [
    'driver:',
    '  type: qemu',
    '  image: debian/stable',
    'env:',
    `- MODE=${opts.env ?? 'one'}`,
    'sources:',
    `- http://10.0.2.2:${server.port}/project.git => project`,
    'stages:',
    '- deps',
    '- build',
    'jobs:',
    '- stage: deps',
    '  name: prepare',
    '  commands:',
    // What the cached stage leaves in the machine: a file outside the source folder, and an artifact.
    `  - head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /root/prepared; echo >> /root/prepared`,
    '  - echo "deps-ran"',
    '  artifacts:',
    '  - prepared => prepared.txt',
    '- stage: build',
    '  name: use',
    '  commands:',
    '  - echo "prepared=$(cat /root/prepared)"',
    '  - echo "source=$(cat project/version.txt)"',
    '  - echo "now=$(date +%s)"',
    `  - echo "rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')"`,
    ...(opts.buildLine ? [`  - ${opts.buildLine}`] : []),
    '',
  ].join('\n');
}

interface Build extends CliResult {
  artifact: string;
  startedAt: number;
}

let n = 0;
async function build(m: string, ...extra: string[]): Promise<Build> {
  const dir = path.join(work, `b${++n}`);
  mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), m);
  writeFileSync(path.join(dir, 'driver.conf'), `driver qemu {\n  disks "${disks}"\n  memory 1024\n  cpus 1\n}\n`);
  const startedAt = Date.now();
  const r = await runCli([
    ...projectArgs(dir, { cacheDir: path.join(work, 'cache') }),
    '-image-build',
    'never',
    '-cache-stage',
    'deps',
    ...extra,
  ]);
  let artifact = '';
  try {
    artifact = readFileSync(path.join(dir, 'artifacts', 'prepared.txt'), 'utf8').trim();
  } catch {
    // checked by the caller
  }
  return { ...r, artifact, startedAt };
}

/** Every saved machine state file under a store folder. */
function findStateFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => path.basename(f) === 'machine.state')
    .map((f) => path.join(root, f));
}

function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function value(r: CliResult, name: string): string {
  return new RegExp(`^${name}=(\\S+)$`, 'm').exec(r.stdout)?.[1] ?? '';
}

/** The summary table's status of a job. */
function status(r: CliResult, job: string): string {
  return new RegExp(`^\\S+\\s+${job}\\s+(\\S+)`, 'm').exec(r.stdout)?.[1] ?? '';
}

describe('stage states through the CLI (qemu, TCG)', () => {
  it('saves after deps, restores it in later builds, and runs deps again when the key or the age says so', async () => {
    const first = await build(manifest());
    expect(first.code, show(first)).toBe(0);
    expect(status(first, 'prepare'), show(first)).toBe('passed');
    expect(first.stdout).toMatch(/stage cache: saved the machine after stage deps/);
    expect(first.artifact).toMatch(/^[0-9a-f]{32}$/);
    expect(value(first, 'source')).toBe('v1');

    // A new commit of the source: the stage after the cached one sees it.
    commit('v2');
    const second = await build(manifest());
    expect(second.code, show(second)).toBe(0);
    expect(status(second, 'prepare'), show(second)).toBe('cached');
    expect(status(second, 'clone.1')).toBe('passed');
    expect(second.stdout).not.toMatch(/deps-ran/);
    expect(value(second, 'prepared')).toBe(first.artifact);
    expect(second.artifact, 'the kept artifact is placed again').toBe(first.artifact);
    expect(value(second, 'source')).toBe('v2');
    // The guest clock is the host's, not the time of the save (several seconds before).
    const now = Number(value(second, 'now'));
    expect(now).toBeGreaterThanOrEqual(Math.floor(second.startedAt / 1000) - 2);
    expect(now).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 2);

    // A change in a later stage still hits; two restores of one state draw different random bytes.
    const third = await build(manifest({ buildLine: 'echo later-stage-changed' }));
    expect(third.code, show(third)).toBe(0);
    expect(status(third, 'prepare'), show(third)).toBe('cached');
    expect(third.stdout).toMatch(/^later-stage-changed$/m);
    expect(value(third, 'rand')).toMatch(/^[0-9a-f]{32}$/);
    expect(value(third, 'rand')).not.toBe(value(second, 'rand'));

    // -cache-max-age 0: too old, so deps runs again (and saves a new state).
    const aged = await build(manifest(), '-cache-max-age', '0');
    expect(aged.code, show(aged)).toBe(0);
    expect(status(aged, 'prepare'), show(aged)).toBe('passed');
    expect(aged.stdout).toMatch(/older than the max age/);

    // Another env value: another key, deps runs.
    const other = await build(manifest({ env: 'two' }));
    expect(other.code, show(other)).toBe(0);
    expect(status(other, 'prepare'), show(other)).toBe('passed');
    expect(other.stdout).toMatch(/deps-ran/);

    // A damaged state file (same size, other bytes): one warning, and deps runs.
    for (const f of findStateFiles(path.join(work, 'cache', 'stages'))) {
      chmodSync(f, 0o644);
      const fd = openSync(f, 'r+');
      writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 1 << 20);
      closeSync(fd);
    }
    const damaged = await build(manifest({ env: 'two' }));
    expect(damaged.code, show(damaged)).toBe(0);
    expect(status(damaged, 'prepare'), show(damaged)).toBe('passed');
    const warnings = (damaged.stdout + damaged.stderr).split('\n').filter((l) => /stage cache: could not restore/.test(l));
    expect(warnings, show(damaged)).toHaveLength(1);
    // QEMU's own load error or our digest check, whichever notices first.
    expect(warnings[0]).toMatch(/could not restore the saved machine \(.+\); running the stages/);

    const ls = await runCli(['cache', 'ls', '-cache-dir', path.join(work, 'cache'), '--json']);
    const states = JSON.parse(ls.stdout) as { kind: string; stage?: string }[];
    expect(states.filter((s) => s.kind === 'stage' && s.stage === 'deps')).toHaveLength(2);
  }, 900_000);
});
