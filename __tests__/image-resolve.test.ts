// resolveImage's order with the cache and download sources in it, and
// -image-build auto|always|never. The builder itself is exercised by the
// qemu driver's tests; here a previously built image stands in for it (the
// builder reuses one when present), so no VM or mmdebstrap run is needed.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DriverSettings } from '../src/config/settings.js';
import { merged, testSettings, type SettingsChanges } from './helpers/settings.js';
import { DownloadError, ImageNotFoundError, ImageRejectedError } from '../src/images/fetch/index.js';
import { diskPath } from '../src/images/local.js';
import { builtImagesDir, resolveImage } from '../src/images/resolve.js';
import { silentReporter, type Reporter } from '../src/core/reporter.js';
import { makeQcow2, startImageServer, type ImageServer } from './helpers/image-server.js';

let server: ImageServer;
let work: string;
let served: string;
let local: string;
let dir: string;

function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentReporter, lines, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) };
}

function settings(extra: SettingsChanges = {}): DriverSettings {
  const base = { cacheDir: path.join(dir, 'cache'), image: { server: server.url, build: 'auto' as const } };
  return testSettings(path.join(dir, 'tmp'), merged(base, extra));
}

/** Puts a file where the builder keeps its images, as if it had built it. */
function prebuilt(s: DriverSettings, name: string): string {
  const file = diskPath(builtImagesDir(s.cacheDir)!, name);
  mkdirSync(path.dirname(file), { recursive: true });
  copyFileSync(local, file);
  return file;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-image-resolve-'));
  served = makeQcow2(path.join(work, 'served.qcow2'), { dataKiB: 64, seed: 7 });
  local = makeQcow2(path.join(work, 'local.qcow2'), { dataKiB: 32, seed: 8 });
  server = await startImageServer();
});

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  server.images.clear();
  server.requests.length = 0;
  server.clear();
  server.serve('debian/stable', served);
  server.serve('alpine/edge', served);
  dir = mkdtempSync(path.join(work, 'case-'));
  mkdirSync(path.join(dir, 'tmp'));
});

describe('resolveImage with cache and download', () => {
  it('1. an explicit file wins over everything', async () => {
    const r = await resolveImage({ name: 'debian/stable', settings: settings({ image: { file: local } }), reporter: recorder() });
    expect(r).toMatchObject({ source: 'file', path: local });
    expect(server.requests).toHaveLength(0);
  });

  it('2. the disks folder wins over cache and download', async () => {
    const disks = path.join(dir, 'disks');
    const file = diskPath(disks, 'debian/stable');
    mkdirSync(path.dirname(file), { recursive: true });
    copyFileSync(local, file);
    const r = await resolveImage({ name: 'debian/stable', settings: settings({ qemu: { disks } }), reporter: recorder() });
    expect(r).toMatchObject({ source: 'disks', path: file });
    expect(server.requests).toHaveLength(0);
  });

  it('4 then 3. a download first, the cache the second time', async () => {
    const first = await resolveImage({ name: 'alpine/edge', settings: settings(), reporter: recorder() });
    expect(first.source).toBe('download');
    const second = await resolveImage({ name: 'alpine/edge', settings: settings(), reporter: recorder() });
    expect(second).toMatchObject({ source: 'cache', path: first.path, sha256: first.sha256 });
    expect(server.imageGets()).toHaveLength(1);
  });

  it('a downloaded image is preferred over a built one under auto', async () => {
    const s = settings();
    prebuilt(s, 'debian/stable');
    const r = await resolveImage({ name: 'debian/stable', settings: s, reporter: recorder() });
    expect(r.source).toBe('download');
  });
});

describe('-image-build', () => {
  it('auto: builds when the server does not have a buildable image, saying why', async () => {
    const s = settings();
    const built = prebuilt(s, 'debian/bookworm');
    const rep = recorder();
    const r = await resolveImage({ name: 'debian/bookworm', settings: s, reporter: rep });
    expect(r).toMatchObject({ source: 'build', path: built });
    expect(server.imageGets()).toHaveLength(1);
    expect(
      rep.lines.some((l) =>
        /has no image debian\/bookworm .*it has: alpine\/edge, debian\/stable\. Building debian\/bookworm with our builder instead/.test(l),
      ),
    ).toBe(true);
  });

  it('auto: builds when the server cannot be reached', async () => {
    const s = settings({ image: { server: 'http://127.0.0.1:1' } });
    prebuilt(s, 'debian/stable');
    const r = await resolveImage({ name: 'debian/stable', settings: s, reporter: recorder() });
    expect(r.source).toBe('build');
  });

  it("auto: a name we cannot build gets the server's 404 with its listing", async () => {
    const err = await resolveImage({ name: 'freebsd/13', settings: settings(), reporter: recorder() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageNotFoundError);
    expect((err as Error).message).toContain('has no image freebsd/13');
    expect((err as Error).message).toContain('it has: alpine/edge, debian/stable.');
  });

  it('auto: a refused download (checksum) is an error, not a reason to build', async () => {
    const s = settings({ image: { sha256: '0'.repeat(64) } });
    prebuilt(s, 'debian/stable');
    await expect(resolveImage({ name: 'debian/stable', settings: s, reporter: recorder() })).rejects.toBeInstanceOf(ImageRejectedError);
  });

  it('never: the download failure is the answer', async () => {
    const s = settings({ image: { build: 'never', server: 'http://127.0.0.1:1' } });
    prebuilt(s, 'debian/stable');
    const err = await resolveImage({ name: 'debian/stable', settings: s, reporter: recorder() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(
      /downloading debian\/stable from http:\/\/127\.0\.0\.1:1\/qemu\/x86_64\/debian\/stable failed: the connection was refused\./,
    );
  });

  it('always: the builder, without asking the server', async () => {
    const s = settings({ image: { build: 'always' } });
    prebuilt(s, 'debian/stable');
    const r = await resolveImage({ name: 'debian/stable', settings: s, reporter: recorder() });
    expect(r.source).toBe('build');
    expect(server.requests).toHaveLength(0);
  });
});
