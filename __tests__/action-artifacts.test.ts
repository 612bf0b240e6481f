// Artifact upload and the image caches through the real @actions/artifact,
// @actions/cache and @actions/tool-cache clients, against Azurite (the real
// Azure Blob emulator) and a stand-in for GitHub's results service (the only
// mock: GitHub's own servers cannot exist here; see helpers/results-service.ts).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { cacheKey, restoreImage, saveImage, toolName, toolVersion } from '../src/action/image-cache.js';
import { makeRunner, runPost, startMain, runMain, type Runner } from './helpers/action-harness.js';
import { startAzurite, type Azurite } from './helpers/azurite.js';
import { startResultsService, type ResultsService } from './helpers/results-service.js';

let azurite: Azurite;
let results: ResultsService;
const runners: Runner[] = [];

beforeAll(async () => {
  azurite = await startAzurite();
  results = await startResultsService(azurite.blobUrl);
});
afterAll(async () => {
  await results?.stop();
  await azurite?.stop();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const r of runners.splice(0)) await r.cleanup();
});

async function runner(manifest: string): Promise<Runner> {
  const r = await makeRunner();
  runners.push(r);
  await writeFile(path.join(r.workspace, '.djinn.yml'), manifest);
  return r;
}

/** Downloads an artifact with the real client, as a later job would. */
async function download(id: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-download-'));
  for (const [k, v] of Object.entries(results.env)) vi.stubEnv(k, v);
  vi.stubEnv('GITHUB_SERVER_URL', 'https://github.com');
  await new DefaultArtifactClient().downloadArtifact(id, { path: dir });
  return dir;
}

const BUILD = (payload: string) => `driver:
  type: os
stages:
- build
- test
jobs:
- stage: build
  name: compile
  commands:
  - mkdir -p out/sub
  - printf '%s' '${payload}' > out/app
  - head -c 300000 /dev/urandom > out/sub/blob.bin
  artifacts:
  - out/app => bin/app
  - out/sub/blob.bin => blob.bin
- stage: test
  name: unit
  commands:
  - exit 1
`;

describe('artifact upload', () => {
  it('uploads the artifacts of a failed build; the downloaded bytes are the collected ones', async () => {
    const payload = randomBytes(12).toString('hex');
    const r = await runner(BUILD(payload));
    const res = await runMain(r, { env: results.env, inputs: { 'artifact-name': 'my-artifacts' } });
    expect(res.code, res.stdout + res.stderr).toBe(1);
    expect(res.outputs.status).toBe('failed');
    const id = Number(res.outputs['artifact-id']);
    expect(id).toBeGreaterThan(0);
    expect(res.outputs['artifact-url']).toBe(`https://github.com/octo/example/actions/runs/1001/artifacts/${id}`);
    expect(res.summary).toContain('my-artifacts');
    expect(res.state['upload-pending']).toBe('false');

    const dir = await download(id);
    try {
      const collected = res.outputs['artifacts-dir'];
      expect(await readFile(path.join(dir, 'bin', 'app'), 'utf8')).toBe(payload);
      expect((await readFile(path.join(dir, 'blob.bin'))).equals(await readFile(path.join(collected, 'blob.bin')))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The post step has nothing left to upload.
    const before = results.artifacts.length;
    const post = await runPost(r, { env: results.env });
    expect(post.code).toBe(0);
    expect(results.artifacts.length).toBe(before);
  });

  it('derives distinct default names for matrix legs of one job', async () => {
    const names: string[] = [];
    for (const image of ['debian/stable', 'debian/oldstable']) {
      const r = await runner(BUILD('x'));
      const res = await runMain(r, { env: results.env, inputs: { image } });
      expect(res.outputs['artifact-id']).toMatch(/^\d+$/);
      names.push(res.state['artifact-name']);
    }
    expect(names[0]).not.toBe(names[1]);
    expect(names[0]).toMatch(/^djinn-build-debian_stable-[0-9a-f]{8}$/);
  });

  it('after SIGTERM the machine is stopped and the post step uploads what was collected', async () => {
    const r = await runner(`driver:
  type: os
stages:
- build
jobs:
- stage: build
  name: first
  commands:
  - printf early > early.txt
  artifacts:
  - early.txt
- stage: build
  name: long
  commands:
  - echo started-long-job
  - sleep 120
`);
    const run = startMain(r, { env: { ...results.env }, inputs: { 'artifact-name': 'cancelled-build' } });
    await run.waitFor(/started-long-job/);
    run.child.kill('SIGTERM');
    const res = await run.done;
    expect(res.code).toBe(1);
    expect(res.outputs.status).toBe('killed');
    expect(res.state['upload-pending']).toBe('true');
    expect(results.artifacts.some((a) => a.name === 'cancelled-build')).toBe(false);
    // The job's process group was stopped with the build.
    expect(res.stdout).toMatch(/long: killed/);

    const post = await runPost(r, { env: results.env });
    expect(post.code, post.stdout + post.stderr).toBe(0);
    const up = results.artifacts.find((a) => a.name === 'cancelled-build');
    expect(up?.finalized).toBe(true);
    const dir = await download(up!.id);
    try {
      expect(await readFile(path.join(dir, 'early.txt'), 'utf8')).toBe('early');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('image caches', () => {
  async function runnerEnv(): Promise<{ root: string; toolCache: string }> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'djinn-imgcache-'));
    const toolCache = path.join(root, 'tool-cache');
    await mkdir(path.join(root, 'temp'), { recursive: true });
    await mkdir(toolCache, { recursive: true });
    vi.stubEnv('RUNNER_TEMP', path.join(root, 'temp'));
    vi.stubEnv('RUNNER_TOOL_CACHE', toolCache);
    vi.stubEnv('GITHUB_WORKSPACE', root);
    vi.stubEnv('HOME', path.join(root, 'home'));
    vi.stubEnv('GITHUB_SERVER_URL', 'https://github.com');
    for (const [k, v] of Object.entries(results.env)) vi.stubEnv(k, v);
    return { root, toolCache };
  }

  it('maps image name and revision to a valid tool-cache version and a cache key', () => {
    const rev = { kind: 'sha256' as const, value: '0123456789abcdef'.repeat(4) };
    expect(toolVersion(rev)).toBe('1.0.0-sha256-0123456789abcdef');
    expect(toolName('debian/stable')).toBe('djinn-image-debian_2fstable');
    expect(cacheKey('debian/stable', rev)).toBe('djinn-image-v1-debian_2fstable-sha256-0123456789abcdef');
    const server = toolVersion({ kind: 'rev', value: 'https://images.example/qemu/x86_64/debian/stable "abc"' });
    expect(server).toMatch(/^1\.0\.0-rev-[0-9a-f]{16}$/);
    expect(server).not.toBe(toolVersion({ kind: 'rev', value: 'https://images.example/qemu/x86_64/debian/stable "abd"' }));
  });

  it('saves an image across runs and restores it on a fresh runner; the tool cache then answers within the job', async () => {
    const image = randomBytes(2 * 1024 * 1024);
    const rev = { kind: 'rev' as const, value: `etag-${randomBytes(4).toString('hex')}` };
    const first = await runnerEnv();
    const second = await runnerEnv();
    try {
      vi.stubEnv('RUNNER_TEMP', path.join(first.root, 'temp'));
      vi.stubEnv('RUNNER_TOOL_CACHE', first.toolCache);
      vi.stubEnv('HOME', path.join(first.root, 'home'));
      vi.stubEnv('GITHUB_WORKSPACE', first.root);
      const file = path.join(first.root, 'downloaded.qcow2');
      await writeFile(file, image);
      const saved = await saveImage('debian/stable', rev, file);
      expect(saved.cacheId).toBeGreaterThan(0);
      expect(results.caches.find((c) => c.key === cacheKey('debian/stable', rev))?.finalized).toBe(true);

      // A fresh runner: empty tool cache, so the repository cache answers.
      vi.stubEnv('RUNNER_TEMP', path.join(second.root, 'temp'));
      vi.stubEnv('RUNNER_TOOL_CACHE', second.toolCache);
      vi.stubEnv('HOME', path.join(second.root, 'home'));
      vi.stubEnv('GITHUB_WORKSPACE', second.root);
      const hit = await restoreImage('debian/stable', rev);
      expect(hit?.from).toBe('cache');
      expect((await readFile(hit!.path)).equals(image)).toBe(true);
      expect(hit!.path.startsWith(second.toolCache)).toBe(true);

      // Later in the same job: found in the tool cache, no call to the service.
      const calls = results.calls.length;
      const again = await restoreImage('debian/stable', rev);
      expect(again?.from).toBe('tool-cache');
      expect(again?.path).toBe(hit!.path);
      expect(results.calls.length).toBe(calls);

      // Another revision is a miss.
      expect(await restoreImage('debian/stable', { kind: 'rev', value: 'other' })).toBeUndefined();
    } finally {
      await rm(first.root, { recursive: true, force: true });
      await rm(second.root, { recursive: true, force: true });
    }
  });

  it('ignores a cached image whose bytes do not match the pinned digest', async () => {
    const env = await runnerEnv();
    try {
      const file = path.join(env.root, 'img.qcow2');
      await writeFile(file, randomBytes(4096));
      const pinned = { kind: 'sha256' as const, value: 'ab'.repeat(32) };
      // Saved under the pinned key, but with other bytes (a poisoned entry).
      await saveImage('alpine/edge', pinned, file);
      await rm(path.join(env.toolCache, toolName('alpine/edge')), { recursive: true, force: true });
      const out: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (out.push(String(c)), true));
      try {
        expect(await restoreImage('alpine/edge', pinned)).toBeUndefined();
      } finally {
        spy.mockRestore();
      }
      expect(out.join('')).toMatch(/::warning::the cached image alpine\/edge has SHA-256 [0-9a-f]{64}, not the pinned (ab){32}/);
      expect(existsSync(path.join(env.toolCache, toolName('alpine/edge')))).toBe(false);
    } finally {
      await rm(env.root, { recursive: true, force: true });
    }
  });
});

describe('warm-start states across runs', () => {
  it('carries the warm folder between runners under a key the action knows before the boot', async () => {
    const { installedQemu, restoreWarmStates, saveWarmStates, warmKey, warmPattern } = await import('../src/action/warm-cache.js');
    const { testSettings } = await import('./helpers/settings.js');
    const { silentReporter } = await import('../src/core/reporter.js');
    const roots: string[] = [];
    const fresh = async () => {
      const root = await mkdtemp(path.join(os.tmpdir(), 'djinn-warmcache-'));
      roots.push(root);
      for (const [k, v] of Object.entries({
        ...results.env,
        HOME: path.join(root, 'home'),
        GITHUB_WORKSPACE: root,
        RUNNER_TEMP: path.join(root, 'temp'),
        GITHUB_SERVER_URL: 'https://github.com',
      }))
        vi.stubEnv(k, v);
      await mkdir(path.join(root, 'temp'), { recursive: true });
      const cacheDir = path.join(root, 'home', '.cache', 'djinn', 'images');
      return { ...testSettings(path.join(root, 'temp'), { qemu: { warm: 'on', cpus: 2, memoryMiB: 1024 } }), cacheDir };
    };
    const rev = { kind: 'rev' as const, value: `etag-${randomBytes(4).toString('hex')}` };
    try {
      const one = await fresh();
      expect(warmPattern(one.cacheDir)).toBe('~/.cache/djinn/images/warm');
      await restoreWarmStates('debian/stable', rev, one, 'tcg', silentReporter);
      const state = path.join(one.cacheDir, 'warm', 'abc123', 'current');
      await mkdir(path.dirname(state), { recursive: true });
      await writeFile(state, '{"generation":"g1"}');
      const report = { status: 'passed' as const, durationMs: 1, jobs: [], artifacts: [], facts: { warmSaveSeconds: 1.5 } };
      await saveWarmStates(one, report, silentReporter);
      const { key } = warmKey('debian/stable', rev, one, 'tcg', await installedQemu());
      expect(results.caches.find((c) => c.key === key)?.finalized).toBe(true);

      const two = await fresh();
      await restoreWarmStates('debian/stable', rev, two, 'tcg', silentReporter);
      expect(await readFile(path.join(two.cacheDir, 'warm', 'abc123', 'current'), 'utf8')).toBe('{"generation":"g1"}');

      // Other memory: same prefix, so the restore key still brings the folder (the driver then decides).
      const three = await fresh();
      three.qemu.memoryMiB = 2048;
      await restoreWarmStates('debian/stable', rev, three, 'tcg', silentReporter);
      expect(existsSync(path.join(three.cacheDir, 'warm', 'abc123', 'current'))).toBe(true);
      // refresh: nothing restored.
      const four = await fresh();
      four.qemu.warm = 'refresh';
      await restoreWarmStates('debian/stable', rev, four, 'tcg', silentReporter);
      expect(existsSync(path.join(four.cacheDir, 'warm'))).toBe(false);
    } finally {
      for (const r of roots) await rm(r, { recursive: true, force: true });
    }
  });
});
