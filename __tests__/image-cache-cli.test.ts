// `djinn image ls` and `djinn image rm`, run through the bundled CLI over a
// cache filled from the loopback image server.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testSettings } from './helpers/settings.js';
import { cachedOrDownloaded } from '../src/images/fetch/index.js';
import { silentReporter } from '../src/core/reporter.js';
import { runCli } from './helpers/cli.js';
import { makeQcow2, startImageServer, type ImageServer } from './helpers/image-server.js';

let server: ImageServer;
let work: string;
let cacheDir: string;

/** The bundled CLI (dist/cli.js, from npm run build), as a user runs it. */
function djinn(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, { cwd: work, env });
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-image-cli-'));
  cacheDir = path.join(work, 'xdg', 'djinn', 'images');
  server = await startImageServer();
  server.serve('debian/stable', makeQcow2(path.join(work, 's.qcow2'), { dataKiB: 128 }));
  server.serve('alpine/edge', makeQcow2(path.join(work, 'e.qcow2'), { dataKiB: 64, seed: 5 }));
  // An image our builder made, as it leaves it (disks layout under built/).
  const built = path.join(cacheDir, 'built', 'qemu', 'x86_64', 'debian', 'bookworm');
  mkdirSync(path.dirname(built), { recursive: true });
  makeQcow2(built, { dataKiB: 16 });
  for (const name of ['debian/stable', 'alpine/edge']) {
    await cachedOrDownloaded({
      name,
      settings: testSettings(work, { cacheDir, image: { server: server.url } }),
      reporter: silentReporter,
    });
  }
});

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('djinn image ls / rm', () => {
  it('lists the cache under $XDG_CACHE_HOME by default, as a table and as JSON', async () => {
    const ls = await djinn(['image', 'ls'], { XDG_CACHE_HOME: path.join(work, 'xdg') });
    expect(ls.code).toBe(0);
    const lines = ls.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+SIZE\s+CHECKED\s+SHA256\s+SOURCE$/);
    expect(lines[1]).toMatch(
      new RegExp(`^alpine/edge\\s+[\\d.]+ KiB\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\s+[0-9a-f]{12}\\s+${server.url}/qemu/x86_64/alpine/edge$`),
    );
    expect(lines[2]).toMatch(/^debian\/stable\s/);
    expect(lines[3]).toMatch(/^debian\/bookworm\s+[\d.]+ KiB\s+\S+Z\s+-\s+built here \(djinn image build\)$/);
    expect(lines[4]).toMatch(new RegExp(`^3 images, [\\d.]+ [KM]iB in ${cacheDir}$`));

    const json = await djinn(['image', 'ls', '-cache-dir', cacheDir, '--json']);
    const entries = JSON.parse(json.stdout) as { name: string; path: string; sha256: string; revision: string }[];
    expect(entries.map((e) => e.name)).toEqual(['alpine/edge', 'debian/stable', 'debian/bookworm']);
    expect(entries.slice(0, 2).every((e) => existsSync(e.path) && /^[0-9a-f]{64}$/.test(e.sha256) && e.revision.startsWith('"'))).toBe(
      true,
    );
  });

  it('removes one name, says when a name is not cached, and removes everything with --all', async () => {
    const rm = await djinn(['image', 'rm', '-cache-dir', cacheDir, 'debian/stable']);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(/^Removed debian\/stable \([\d.]+ KiB, from http:.*\/qemu\/x86_64\/debian\/stable\)$/m);
    const after = JSON.parse((await djinn(['image', 'ls', '-cache-dir', cacheDir, '--json'])).stdout) as { name: string }[];
    expect(after.map((e) => e.name)).toEqual(['alpine/edge', 'debian/bookworm']);

    const missing = await djinn(['image', 'rm', '-cache-dir', cacheDir, 'debian/sid']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`djinn: image rm: debian/sid is not in the cache (${cacheDir}); see djinn image ls.\n`);

    const usage = await djinn(['image', 'rm', '-cache-dir', cacheDir]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('djinn: image rm needs an image name (e.g. debian/stable) or --all.\n');

    const all = await djinn(['image', 'rm', '-cache-dir', cacheDir, '--all']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^Removed debian\/bookworm \([\d.]+ KiB, built here\)$/m);
    expect(all.stdout).toMatch(/^Removed alpine\/edge /m);
    const empty = await djinn(['image', 'ls', '-cache-dir', cacheDir]);
    expect(empty.stdout).toBe(`No cached images in ${cacheDir}.\n`);
  });
});
