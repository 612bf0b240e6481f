// End to end: the bundled action boots our own test image under TCG and runs a
// manifest whose source is the workflow's own repository; the checkout (with an
// uncommitted change) is copied in, not cloned. Then the image caches across
// runs: a first run downloads the image from a loopback HTTP server and saves
// it with @actions/cache (Azurite + the results-service stand-in, which mocks
// GitHub's own servers); a second run on a fresh runner restores it and never
// downloads.
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRunner, runMain, runPost, startMain, type Runner } from './helpers/action-harness.js';
import { startAzurite, type Azurite } from './helpers/azurite.js';
import { testDisks } from './helpers/vm.js';
import { startResultsService, type ResultsService } from './helpers/results-service.js';

/** QEMU processes whose command line mentions `dir` (nothing of a finished run may be left). */
function qemuUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const comm = readFileSync(`/proc/${p}/comm`, 'utf8');
        return comm.startsWith('qemu-system') && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const MANIFEST = `driver:
  type: qemu
  image: debian/stable
sources:
- https://github.com/octo/example.git => src
stages:
- build
jobs:
- stage: build
  name: check
  commands:
  - cat src/uncommitted.txt
  - test -f src/.djinn.yml
  - test ! -d src/.git || echo "has .git"
  - uname -m > arch.txt
  artifacts:
  - arch.txt
`;

let disks: string;
const runners: Runner[] = [];
beforeAll(() => {
  disks = testDisks();
});
afterAll(async () => {
  for (const r of runners) await r.cleanup();
});

async function runner(): Promise<Runner> {
  const r = await makeRunner();
  runners.push(r);
  await writeFile(path.join(r.workspace, '.djinn.yml'), MANIFEST);
  await writeFile(path.join(r.workspace, 'uncommitted.txt'), 'uncommitted change 1234\n');
  return r;
}

describe('action with the qemu driver (TCG)', () => {
  it('boots our image and copies the checkout for the workflow repository instead of cloning it', async () => {
    const r = await runner();
    const res = await runMain(r, { inputs: { kvm: 'off', disks, 'upload-artifacts': 'false', 'warm-start': 'off' } });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('uncommitted change 1234');
    expect(res.stdout).toMatch(/Copying the workspace .* into src \(instead of cloning https:\/\/github\.com\/octo\/example\.git\)/);
    expect(res.stdout).not.toContain('git clone');
    expect(res.outputs.status).toBe('passed');
    expect(res.outputs.accelerator).toBe('tcg');
    expect(Number(res.outputs['boot-seconds'])).toBeGreaterThan(0);
    expect(await readFile(path.join(res.outputs['artifacts-dir'], 'arch.txt'), 'utf8')).toBe('x86_64\n');
    expect(res.summary).toContain('accelerator tcg');
    expect(res.summary).toMatch(/booted in [\d.]+ s/);
    expect(qemuUnder(r.root)).toEqual([]);
    const post = await runPost(r);
    expect(post.code).toBe(0);
  });
});

describe('image caches across runs with the qemu driver', () => {
  let azurite: Azurite;
  let results: ResultsService;
  let server: http.Server;
  let url: string;
  const gets: string[] = [];

  beforeAll(async () => {
    azurite = await startAzurite();
    results = await startResultsService(azurite.blobUrl);
    const image = path.join(disks, 'qemu', 'x86_64', 'debian', 'stable');
    const { size, mtimeMs } = statSync(image);
    const etag = `"test-${size}-${Math.round(mtimeMs)}"`;
    // A plain static file server on loopback, as an image URL would be.
    server = http.createServer((req, res) => {
      if (req.method === 'GET') gets.push(req.url ?? '');
      res.writeHead(200, { 'content-length': size, etag, 'content-type': 'application/octet-stream' });
      if (req.method === 'HEAD') res.end();
      else createReadStream(image).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/qemu/x86_64/debian/stable`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await results?.stop();
    await azurite?.stop();
  });

  it('downloads and saves on the first run; restores without downloading on a fresh runner', async () => {
    const inputs = { kvm: 'off', 'image-url': url, 'upload-artifacts': 'false', 'warm-start': 'off' };
    const first = await runner();
    const one = await runMain(first, { inputs, env: results.env });
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(gets.length).toBeGreaterThan(0);
    expect(one.stdout).toMatch(/Image debian\/stable came from download in /);
    expect(one.stdout).toMatch(/Image debian\/stable saved to the repository cache in /);
    expect(results.caches.some((c) => c.finalized && c.key.startsWith('djinn-image-v1-debian_2fstable-rev-'))).toBe(true);

    const downloads = gets.length;
    const second = await runner();
    const two = await runMain(second, { inputs, env: results.env });
    expect(two.code, two.stdout + two.stderr).toBe(0);
    expect(two.stdout).toMatch(
      /Image debian\/stable restored from the repository cache in [\d.]+m?s \(fetching it took [\d.]+m?s on the run that saved it\)/,
    );
    // The numbers, for the record (no assertion on time).
    console.info([...one.stdout.matchAll(/^Image .*$/gm), ...two.stdout.matchAll(/^Image .*$/gm)].map((m) => m[0]).join('\n'));
    expect(gets.length).toBe(downloads);
    expect(one.summary).toMatch(/image <code>debian\/stable<\/code> \(downloaded in [\d.]+m?s\)/);
    expect(two.summary).toMatch(/image <code>debian\/stable<\/code> \(restored from the repository cache in [\d.]+m?s\)/);
    expect(two.stdout).toContain('uncommitted change 1234');
    expect(qemuUnder(first.root).concat(qemuUnder(second.root))).toEqual([]);
  }, 420_000);
  it('carries the warm-start state to a fresh runner: the second run restores instead of booting', async () => {
    const inputs = { kvm: 'off', disks, memory: '512', cpus: '1', 'upload-artifacts': 'false', 'warm-start': 'on' };
    const one = await runMain(await runner(), { inputs, env: results.env });
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(one.outputs['machine-start']).toBe('booted');
    expect(one.stdout).toMatch(/Warm-start state saved to the repository cache in /);
    const two = await runMain(await runner(), { inputs, env: results.env });
    expect(two.code, two.stdout + two.stderr).toBe(0);
    expect(two.stdout).toMatch(/Warm-start states restored from the repository cache \(djinn-warm-v1-[0-9a-f]{16}-tcg-c1-m512\)/);
    expect(two.outputs['machine-start']).toBe('restored');
    expect(two.summary).toMatch(/restored from a saved state in [\d.]+ s/);
    expect(two.stdout).toContain('uncommitted change 1234');
    console.info(`warm across runs: cold boot ${one.outputs['boot-seconds']} s, restored ${two.outputs['boot-seconds']} s`);
  });
});

describe('post step after the main step was killed outright', () => {
  it('leaves no QEMU behind and prints the serial console of the machine that never finished booting', async () => {
    const r = await runner();
    const run = startMain(r, { inputs: { kvm: 'off', disks, 'upload-artifacts': 'false', 'warm-start': 'off' } });
    await run.waitFor(/Booting machine with image debian\/stable/);
    await new Promise((res) => setTimeout(res, 1000));
    expect(qemuUnder(r.root).length).toBe(1);
    // Give QEMU a moment to write to its console, then kill main without a chance to clean up.
    await new Promise((res) => setTimeout(res, 2000));
    run.child.kill('SIGKILL');
    await run.done;
    const post = await runPost(r);
    expect(post.code, post.stdout + post.stderr).toBe(0);
    // Its tail, or (when the kernel had not printed yet) a line saying it is empty.
    expect(post.stdout).toMatch(
      /Serial console of the machine that failed to boot|serial console of the machine that did not finish booting is empty/,
    );
    // QEMU dies with main (the driver's parent-death signal) or by the post step's pidfile sweep.
    for (let i = 0; i < 50 && qemuUnder(r.root).length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(qemuUnder(r.root)).toEqual([]);
  });
});

describe('a machine that cannot boot', () => {
  it('fails the step with a one-line reason and leaves the boot failure for the post step', async () => {
    const r = await runner();
    await writeFile(path.join(r.workspace, 'broken.qcow2'), 'this is not a disk image\n'.repeat(100));
    const res = await runMain(r, {
      inputs: { kvm: 'off', 'image-file': 'broken.qcow2', 'upload-artifacts': 'false', 'warm-start': 'off' },
    });
    expect(res.code).toBe(1);
    expect(res.outputs.status).toBe('failed');
    const failed = res.stdout.split('\n').filter((l) => l.startsWith('::error::build failed: '));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/broken\.qcow2/);
    expect(JSON.parse(res.state['boot-failed'])).toHaveLength(1);
    expect(res.summary).toContain('⏭️ skipped');
    const post = await runPost(r);
    expect(post.code).toBe(0);
    expect(qemuUnder(r.root)).toEqual([]);
  });
});
