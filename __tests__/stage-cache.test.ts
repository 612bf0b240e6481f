// Stage states without a VM: the key rules (what misses, what hits), the
// options, the store's age, size cap and artifact checks, and the runner's
// rules for which stages are saved and how a restored build goes on. The
// runner tests use a recording driver (as runner-fake-driver.test.ts does);
// the qemu save and restore are in stage-cache-vm.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stageKey, type StageKeyInput } from '../src/runner/stage-key.js';
import { resolveStageCache, DEFAULT_STAGE_MAX_AGE_MS } from '../src/config/stage-cache.js';
import { parseManifest } from '../src/manifest/parse.js';
import { makePlan } from '../src/manifest/plan.js';
import { StateStore } from '../src/drivers/qemu/warm/store.js';
import type { StateKey } from '../src/drivers/qemu/warm/key.js';
import type { CreateContext, Driver, KeptArtifact, ResumedStage, StageCandidate } from '../src/drivers/driver.js';
import type { ExecResult, JobExecution, OutputSink } from '../src/core/job.js';
import { silentReporter } from '../src/core/reporter.js';
import { planStageKeys, runBuild } from '../src/runner/runner.js';
import { stageStore } from '../src/drivers/qemu/warm/stage-state.js';
import { runCli } from './helpers/cli.js';
import { exitCodeFor } from '../src/core/status.js';

const MANIFEST = `driver:
  type: qemu
  image: debian/stable
env:
  - A=1
objects:
  - obj.txt => obj.txt
sources:
  - https://example.com/repo.git main => src
stages:
  - deps
  - build
  - test
jobs:
  - stage: deps
    name: toolchain
    commands:
      - apt-get install -y gcc
  - stage: build
    name: compile
    commands:
      - make
    artifacts:
      - out => out
  - stage: test
    name: check
    commands:
      - make check
`;

function input(manifest = MANIFEST, over: Partial<StageKeyInput> = {}): StageKeyInput {
  const plan = makePlan(parseManifest(manifest));
  return {
    env: plan.env.map((e) => ({ key: e.split('=')[0]!, value: e.slice(e.indexOf('=') + 1) })),
    objects: [{ src: 'obj.txt', dst: 'obj.txt', sha256: 'a'.repeat(64) }],
    stages: plan.stages,
    userKey: '',
    ...over,
  };
}

/** Index of a stage in the plan (setup comes first). */
const DEPS = 1;

describe('stage key', () => {
  const base = stageKey(input(), DEPS);

  it('is the same for the same build', () => {
    expect(stageKey(input(), DEPS)).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });

  it('misses on a changed command in or before the stage', () => {
    expect(stageKey(input(MANIFEST.replace('apt-get install -y gcc', 'apt-get install -y gcc make')), DEPS)).not.toBe(base);
    expect(stageKey(input(MANIFEST.replace('main => src', 'dev => src')), DEPS)).not.toBe(base);
    expect(stageKey(input(MANIFEST.replace('repo.git', 'other.git')), DEPS)).not.toBe(base);
    expect(stageKey(input(MANIFEST.replace('=> src', '=> code')), DEPS)).not.toBe(base);
    expect(stageKey(input(MANIFEST.replace('name: toolchain', 'name: tools')), DEPS)).not.toBe(base);
  });

  it('misses on a changed env value, object contents, object destination or user key', () => {
    expect(stageKey(input(MANIFEST.replace('A=1', 'A=2')), DEPS)).not.toBe(base);
    expect(
      stageKey(
        input(MANIFEST, {
          env: [
            { key: 'A', value: '1' },
            { key: 'SECRET', value: 'x' },
          ],
        }),
        DEPS,
      ),
    ).not.toBe(base);
    expect(stageKey(input(MANIFEST, { objects: [{ src: 'obj.txt', dst: 'obj.txt', sha256: 'b'.repeat(64) }] }), DEPS)).not.toBe(base);
    expect(stageKey(input(MANIFEST, { objects: [{ src: 'obj.txt', dst: 'elsewhere', sha256: 'a'.repeat(64) }] }), DEPS)).not.toBe(base);
    expect(stageKey(input(MANIFEST, { userKey: 'go.sum:1234' }), DEPS)).not.toBe(base);
  });

  it('hits when only a later stage or an artifact rule changes', () => {
    expect(stageKey(input(MANIFEST.replace('- make check', '- make check-all')), DEPS)).toBe(base);
    expect(stageKey(input(MANIFEST.replace('- make\n', '- make -j4\n')), DEPS)).toBe(base);
    expect(stageKey(input(MANIFEST.replace('out => out', 'out => bin/out')), DEPS)).toBe(base);
    // ... but the later stage's own key sees its command.
    expect(stageKey(input(MANIFEST.replace('- make\n', '- make -j4\n')), DEPS + 1)).not.toBe(stageKey(input(), DEPS + 1));
  });
});

describe('stage cache options', () => {
  it('takes names from repeated flags, lines and commas, and ages in days', () => {
    const fields = { stages: '-cache-stage', maxAge: '-cache-max-age' };
    const s = resolveStageCache({ stages: ['deps', 'build,\ntest', 'deps'], key: 'k', maxAge: '1d12h' }, fields);
    expect(s).toEqual({ stages: ['deps', 'build', 'test'], userKey: 'k', maxAgeMs: 36 * 3600_000 });
    expect(resolveStageCache({ stages: [] }, fields).maxAgeMs).toBe(DEFAULT_STAGE_MAX_AGE_MS);
    expect(resolveStageCache({ stages: ['x'], maxAge: '0' }, fields).maxAgeMs).toBe(0);
    expect(() => resolveStageCache({ stages: ['x'], maxAge: 'soon' }, fields)).toThrow(
      /-cache-max-age.*invalid duration "soon"|invalid duration "soon"/,
    );
  });

  it('counts cached as passed for the exit status', () => {
    expect(exitCodeFor('cached')).toBe(0);
  });
});

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'djinn-stage-cache-'));
  dirs.push(d);
  return d;
}

const KEY: StateKey = {
  imageSha256: 'c'.repeat(64),
  qemuVersion: 'QEMU emulator version 7.2.0',
  machine: 'pc-i440fx-7.2',
  cpu: 'qemu64',
  accel: 'tcg',
  memoryMiB: 512,
  cpus: 1,
  devices: [],
};

/** Publishes a small fake state (real qcow2 overlay on a raw base) with one kept artifact. */
async function publishState(store: StateStore, dir: string, key: StateKey, artifactText = 'artifact'): Promise<void> {
  const base = path.join(dir, 'base.raw');
  await writeFile(base, Buffer.alloc(1 << 20));
  const pending = await store.beginSave(key, { path: base, format: 'raw' });
  await writeFile(pending.statePath, 'machine state bytes');
  const art = path.join(dir, `art-${Math.random()}`);
  await writeFile(art, artifactText);
  await pending.publish({ stage: { name: 'deps', artifacts: [{ job: 'toolchain', src: 'out', dst: 'out', path: art }] } });
}

describe('stage state store', () => {
  it('keeps the artifacts with the state, checks them at lookup, and honours the max age', async () => {
    const dir = await tempDir();
    const store = new StateStore(dir, { folder: 'stages' });
    const key = { ...KEY, stage: 'd'.repeat(64) };
    await publishState(store, dir, key);
    const base = { path: path.join(dir, 'base.raw'), format: 'raw' as const };
    const r = await store.lookup(key, base, dir, 3600_000);
    expect(r.found?.manifest.stage?.artifacts.map((a) => a.dst)).toEqual(['out']);
    expect(await readFile(path.join(r.found!.dir, 'artifacts', '0'), 'utf8')).toBe('artifact');
    expect((await store.lookup(key, base, dir, 0)).reason).toMatch(/older than the max age/);
    // Another stage part is another state; the warm-start key without a stage too.
    expect((await store.lookup({ ...key, stage: 'e'.repeat(64) }, base, dir)).reason).toMatch(/no saved state/);
    expect((await store.lookup(KEY, base, dir)).reason).toMatch(/no saved state/);
    // A damaged kept artifact: the state is not used.
    const file = path.join(r.found!.dir, 'artifacts', '0');
    execFileSync('chmod', ['u+w', file]);
    await writeFile(file, 'changed!');
    expect((await store.lookup(key, base, dir)).reason).toMatch(/kept artifact out .*does not match/);
  });

  it('two builds saving one key at once leave one valid state', async () => {
    const dir = await tempDir();
    const store = new StateStore(dir, { folder: 'stages' });
    const key = { ...KEY, stage: 'f'.repeat(64) };
    await Promise.all([publishState(store, dir, key, 'one'), publishState(store, dir, key, 'two')]);
    const r = await store.lookup(key, { path: path.join(dir, 'base.raw'), format: 'raw' }, dir);
    expect(r.reason).toBeUndefined();
    await r.found!.verifyState;
    expect(['one', 'two']).toContain(await readFile(path.join(r.found!.dir, 'artifacts', '0'), 'utf8'));
  });

  it('drops the least recently used states beyond its size cap, never the one just saved', async () => {
    const dir = await tempDir();
    const store = new StateStore(dir, { folder: 'stages', capBytes: 1 });
    const k1 = { ...KEY, stage: '1'.repeat(64) };
    const k2 = { ...KEY, stage: '2'.repeat(64) };
    await publishState(store, dir, k1);
    const old = new Date(Date.now() - 3600_000);
    await utimes(path.join(store.keyDir(k1), 'current'), old, old);
    await publishState(store, dir, k2);
    const left = (await store.list()).map((s) => s.manifest.key.stage);
    expect(left).toEqual([k2.stage]);
    expect(await store.remove(store.keyDir(k2).slice(-64, -50))).toHaveLength(1);
    expect(await store.list()).toEqual([]);
  });
});

/** A driver that records calls and pretends to save and restore stage states. */
class StagingDriver implements Driver {
  readonly type = 'fake';
  readonly calls: string[] = [];
  readonly saves: (StageCandidate & { artifacts: KeptArtifact[] })[] = [];
  candidates: StageCandidate[] = [];
  constructor(
    private readonly fail: Record<string, number> = {},
    private readonly resume?: (c: StageCandidate[]) => ResumedStage | undefined,
  ) {}
  private resumed?: ResumedStage;
  async create(ctx: CreateContext): Promise<void> {
    this.candidates = ctx.stageStates?.candidates ?? [];
    this.resumed = this.resume?.(this.candidates);
  }
  async execute(job: JobExecution, _sink: OutputSink): Promise<ExecResult> {
    this.calls.push(`${job.stage}/${job.name}: ${job.script.includes('rm -rf') ? 'fresh ' : ''}run`);
    return { exitCode: this.fail[job.name] ?? 0 };
  }
  async upload(_l: string, guest: string): Promise<void> {
    this.calls.push(`upload ${guest}`);
  }
  async glob(): Promise<string[]> {
    return [];
  }
  async download(): Promise<void> {}
  async destroy(): Promise<void> {}
  async saveStage(save: StageCandidate & { artifacts: KeptArtifact[] }): Promise<{ seconds: number; bytes: number }> {
    this.saves.push(save);
    return { seconds: 1, bytes: 1 };
  }
  resumedStage(): ResumedStage | undefined {
    return this.resumed;
  }
}

const RUN_MANIFEST = `driver:
  type: qemu
  image: debian/stable
objects:
  - obj.txt => obj.txt
sources:
  - https://example.com/repo.git
stages:
  - deps
  - flaky
  - build
allow_failures:
  - flaky
jobs:
  - stage: deps
    name: toolchain
    commands: [apt-get install -y gcc]
  - stage: flaky
    name: maybe
    commands: [might-fail]
  - stage: build
    name: compile
    commands: [make]
`;

async function runStaged(driver: StagingDriver, stages: string[], manifest = RUN_MANIFEST) {
  const dir = await tempDir();
  await writeFile(path.join(dir, 'obj.txt'), 'object');
  await mkdir(path.join(dir, 'artifacts'));
  return runBuild({
    plan: makePlan(parseManifest(manifest)),
    driver,
    reporter: silentReporter,
    env: [],
    artifactsDir: path.join(dir, 'artifacts'),
    objectsDir: dir,
    stageCache: { stages, userKey: '', maxAgeMs: 1000 },
  });
}

describe('runner with stage states', () => {
  it('saves after a stage whose jobs all passed, never after a failed or passed-with-failures one', async () => {
    const d0 = new StagingDriver();
    await runStaged(d0, ['deps', 'flaky', 'build']);
    expect(d0.saves.map((s) => s.stage)).toEqual(['deps', 'flaky', 'build']);

    const d1 = new StagingDriver({ maybe: 1 });
    const r1 = await runStaged(d1, ['deps', 'flaky', 'build']);
    expect(r1.status).toBe('passed_with_failures');
    // Nor after a later stage: the machine carries what the allowed failure left.
    expect(d1.saves.map((s) => s.stage)).toEqual(['deps']);
    // The latest stage is tried first.
    expect(d1.candidates.map((c) => c.stage)).toEqual(['build', 'flaky', 'deps']);

    const d2 = new StagingDriver({ toolchain: 1 });
    const r2 = await runStaged(d2, ['deps', 'build']);
    expect(r2.status).toBe('failed');
    expect(d2.saves).toEqual([]);
  });

  it('after a restore: cached jobs, artifacts placed again, no objects, clones run again into an emptied folder', async () => {
    const dir = await tempDir();
    const kept = path.join(dir, 'kept');
    await writeFile(kept, 'from the state');
    const d = new StagingDriver({}, (c) => ({
      stage: 'deps',
      key: c.find((x) => x.stage === 'deps')!.key,
      savedAt: '2026-01-01T00:00:00.000Z',
      artifacts: [{ job: 'toolchain', src: 'gcc.log', dst: 'logs/gcc.log', path: kept }],
    }));
    const r = await runStaged(d, ['deps']);
    expect(r.status).toBe('passed');
    expect(r.jobs.map((j) => `${j.stage}/${j.name}=${j.status}`)).toEqual([
      'setup/clone.1=passed',
      'deps/toolchain=cached',
      'flaky/maybe=passed',
      'build/compile=passed',
    ]);
    expect(r.jobs[1]!.cachedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(d.calls).toEqual(['setup/clone.1: fresh run', 'flaky/maybe: run', 'build/compile: run']);
    const placed = r.artifacts.find((a) => a.dst === 'logs/gcc.log')!;
    expect(await readFile(placed.path, 'utf8')).toBe('from the state');
    expect(d.saves).toEqual([]); // deps is restored, not saved again
  });
});

describe('djinn plan --json with -cache-stage', () => {
  it('marks the jobs a saved stage state would skip as cached (the clone excepted), the others queued', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'obj.txt'), 'object');
    await writeFile(path.join(dir, '.djinn.yml'), RUN_MANIFEST);
    const plan = makePlan(parseManifest(RUN_MANIFEST));
    const keys = await planStageKeys(plan, [], dir, { stages: ['deps'], userKey: '', maxAgeMs: 1000 });
    const cacheDir = path.join(dir, 'cache');
    await publishState(stageStore(cacheDir), dir, { ...KEY, stage: keys!.get(1)! });
    const plan1 = async (...extra: string[]) => {
      const r = await runCli([
        'plan',
        '--json',
        '-manifest',
        path.join(dir, '.djinn.yml'),
        '-objects',
        dir,
        '-cache-dir',
        cacheDir,
        ...extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as { stages: { name: string; jobs: { name: string; status?: string; cachedAt?: string }[] }[] };
      return json.stages.flatMap((st) => st.jobs.map((j) => `${st.name}/${j.name}=${j.status ?? '-'}${j.cachedAt ? '@' : ''}`));
    };
    expect(await plan1('-cache-stage', 'deps')).toEqual([
      'setup/clone.1=queued',
      'deps/toolchain=cached@',
      'flaky/maybe=queued',
      'build/compile=queued',
    ]);
    expect(await plan1('-cache-stage', 'deps', '-cache-key', 'other')).toEqual([
      'setup/clone.1=queued',
      'deps/toolchain=queued',
      'flaky/maybe=queued',
      'build/compile=queued',
    ]);
    expect(await plan1('-cache-stage', 'deps', '-cache-max-age', '0')).toContain('deps/toolchain=queued');
    expect(await plan1()).toContain('deps/toolchain=-');
  });
});
