// `djinn workflow`, action.yml, this repository's workflows and the action's
// documentation: checked for what the runner and users rely on.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseManifest } from '../src/manifest/parse.js';
import { ROOT, runCli } from './helpers/cli.js';

const INPUTS = [
  'manifest',
  'stage',
  'image',
  'image-file',
  'image-url',
  'image-sha256',
  'image-server',
  'image-build',
  'disks',
  'cpus',
  'memory',
  'kvm',
  'boot-timeout',
  'timeout',
  'job-timeout',
  'env',
  'workspace',
  'artifacts-dir',
  'upload-artifacts',
  'artifact-name',
  'cache',
];
const OUTPUTS = ['status', 'artifacts-dir', 'artifact-id', 'artifact-url', 'accelerator', 'boot-seconds'];

type Action = {
  inputs: Record<string, { description?: string; default?: string }>;
  outputs: Record<string, { description?: string }>;
  runs: Record<string, string>;
};
type Workflow = {
  on: unknown;
  jobs: Record<
    string,
    {
      'runs-on': string;
      strategy?: { matrix: Record<string, unknown[]> };
      steps: { uses?: string; run?: string; with?: Record<string, string> }[];
    }
  >;
};

const MANIFEST = 'driver:\n  type: qemu\n  image: debian/stable\nstages:\n- build\njobs:\n- stage: build\n  commands:\n  - "true"\n';

describe('djinn workflow', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-workflow-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints a workflow with one matrix job per manifest, using the action on the repository's checkout", async () => {
    const repo = path.join(dir, 'repo');
    await mkdir(path.join(repo, '.djinn'), { recursive: true });
    await writeFile(path.join(repo, '.djinn.yml'), MANIFEST);
    await writeFile(path.join(repo, '.djinn', 'debian.yml'), MANIFEST);
    await writeFile(path.join(repo, '.djinn', 'alpine.yaml'), MANIFEST);
    await writeFile(path.join(repo, '.djinn', 'notes.txt'), 'not a manifest');
    const res = await runCli(['workflow'], { cwd: repo });
    expect(res.code, res.stderr).toBe(0);
    const wf = parse(res.stdout) as Workflow;
    const job = wf.jobs.djinn;
    expect(job.strategy?.matrix.manifest).toEqual(['.djinn.yml', '.djinn/alpine.yaml', '.djinn/debian.yml']);
    expect(job.steps[0].uses).toMatch(/^actions\/checkout@/);
    expect(job.steps[1].uses).toMatch(/djinn-vm-action@/);
    expect(job.steps[1].with?.manifest).toBe('${{ matrix.manifest }}');
  });

  it('takes -manifest, -action and -runs-on', async () => {
    const repo = path.join(dir, 'other');
    await mkdir(path.join(repo, 'ci'), { recursive: true });
    await writeFile(path.join(repo, 'ci', 'one.yml'), MANIFEST);
    const res = await runCli(['workflow', '-manifest', 'ci/*.yml', '-action', 'me/fork@main', '-runs-on', 'ubuntu-26.04'], { cwd: repo });
    expect(res.code, res.stderr).toBe(0);
    const job = (parse(res.stdout) as Workflow).jobs.djinn;
    expect(job.strategy?.matrix.manifest).toEqual(['ci/one.yml']);
    expect(job.steps[1].uses).toBe('me/fork@main');
    expect(job['runs-on']).toBe('ubuntu-26.04');
  });

  it('says what is missing when there is no manifest', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    const res = await runCli(['workflow'], { cwd: empty });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^djinn: -manifest: no \.djinn\.yml or \.djinn\/ folder here/);
    expect(res.stdout).toBe('');
  });
});

describe('action.yml', () => {
  it('declares every input (documented, defaults where the issue gives them), every output and the node24 entry points', async () => {
    const action = parse(await readFile(path.join(ROOT, 'action.yml'), 'utf8')) as Action;
    for (const name of INPUTS) {
      expect(action.inputs[name], name).toBeDefined();
      expect(action.inputs[name].description?.length, name).toBeGreaterThan(10);
    }
    expect(action.inputs.manifest.default).toBe('.djinn.yml');
    expect(action.inputs['image-build'].default).toBe('auto');
    expect(action.inputs.kvm.default).toBe('auto');
    expect(action.inputs.workspace.default).toBe('auto');
    expect(action.inputs['upload-artifacts'].default).toBe('true');
    expect(action.inputs.cache.default).toBe('true');
    for (const name of OUTPUTS) expect(action.outputs[name]?.description, name).toBeTruthy();
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js', post: 'dist/post.js' });
  });
});

describe("this repository's workflows", () => {
  it('self-test runs the action on itself over a matrix of images; check-dist rebuilds dist', async () => {
    const dir = path.join(ROOT, '.github', 'workflows');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yml'));
    const wfs: Workflow[] = await Promise.all(files.map(async (f) => parse(await readFile(path.join(dir, f), 'utf8')) as Workflow));
    const jobs = wfs.flatMap((w) => Object.values(w.jobs));
    const self = jobs.find((j) => j.steps.some((s) => s.uses === './' && s.with?.manifest === '.github/djinn/self-test.yml'));
    expect(self?.strategy?.matrix.image?.length).toBeGreaterThan(1);
    const step = self!.steps.find((s) => s.uses === './')!;
    const manifest = await readFile(path.join(ROOT, step.with!.manifest), 'utf8');
    const m = parseManifest(manifest, step.with!.manifest);
    expect(m.driver.type).toBe('qemu');
    expect(m.sources[0].url).toBe('https://github.com/OWNER/REPO.git');
    const check = jobs.find((j) => j.steps.some((s) => s.run?.includes('npm run build')));
    expect(check?.steps.some((s) => s.run?.includes('git status --porcelain -- dist'))).toBe(true);
  });
});

describe('docs/action.md', () => {
  it('documents every input and output and the three use cases', async () => {
    const doc = await readFile(path.join(ROOT, 'docs', 'action.md'), 'utf8');
    for (const name of [...INPUTS, ...OUTPUTS]) expect(doc, name).toContain(`\`${name}\``);
    expect(doc).toMatch(/cross-distribution matrix/i);
    expect(doc).toMatch(/moving a repository from Djinn/i);
    expect(doc).toMatch(/what the action needs from the runner/i);
  });
});
