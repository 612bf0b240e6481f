// The catalogue as an image source, against a loopback server laid out like
// cloud.debian.org (the real one cannot be reached here): the digest from a
// real SHA512SUMS is checked while downloading, a wrong or silent checksum file
// stops the boot, a pinned digest wins, the copy is cached and re-checked with
// the checksum file. No VM: the "image" is a small qcow2.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DriverSettings } from '../src/config/settings.js';
import { merged, testSettings, type SettingsChanges } from './helpers/settings.js';
import { ImageRejectedError } from '../src/images/fetch/index.js';
import { resolveImage } from '../src/images/resolve.js';
import { silentReporter, type Reporter } from '../src/core/reporter.js';
import { startCloudMirror, type CloudMirror } from './helpers/cloud-mirror.js';
import { makeQcow2 } from './helpers/image-server.js';

let mirror: CloudMirror;
let work: string;
let root: string;
let dir: string;
const IMAGE = 'debian-13-genericcloud-amd64.qcow2';

function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentReporter, lines, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) };
}

function settings(extra: SettingsChanges = {}): DriverSettings {
  const base = {
    cacheDir: path.join(dir, 'cache'),
    image: { server: 'http://127.0.0.1:1', source: 'catalogue' as const, mirrors: [`debian=${mirror.url}`] },
  };
  return testSettings(path.join(dir, 'tmp'), merged(base, extra));
}

const sha = (alg: string, file: string) => createHash(alg).update(readFileSync(file)).digest('hex');
const folder = () => path.join(root, 'trixie', 'latest');
function writeSums(lines: string): void {
  writeFileSync(path.join(folder(), 'SHA512SUMS'), lines);
}
function goodSums(): void {
  const img = path.join(folder(), IMAGE);
  writeSums(
    `${'a'.repeat(128)}  debian-13-genericcloud-amd64.json\n${sha('sha512', img)}  ${IMAGE}\n${'b'.repeat(128)}  debian-13-nocloud-amd64.qcow2\n`,
  );
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-catalogue-'));
  root = path.join(work, 'mirror');
  mkdirSync(path.join(root, 'trixie', 'latest'), { recursive: true });
  makeQcow2(path.join(root, 'trixie', 'latest', IMAGE), { dataKiB: 512 });
  mirror = await startCloudMirror(root);
});

afterAll(async () => {
  await mirror?.close();
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  dir = mkdtempSync(path.join(work, 'run-'));
  mkdirSync(path.join(dir, 'tmp'));
  mirror.requests.length = 0;
  goodSums();
});

describe('catalogue source', () => {
  it('downloads debian/stable through the mirror, checked against SHA512SUMS, marked for the cloud-init seed, then cached', async () => {
    const rep = recorder();
    const r = await resolveImage({ name: 'debian/stable', settings: settings(), reporter: rep });
    expect(r).toMatchObject({ source: 'download', cloudInit: true, format: 'qcow2', sha256: sha('sha256', path.join(folder(), IMAGE)) });
    expect(sha('sha256', r.path)).toBe(r.sha256);
    expect(mirror.requests).toEqual(['/trixie/latest/SHA512SUMS', `/trixie/latest/${IMAGE}`]);
    expect(rep.lines.join('\n')).toContain(`SHA512 from ${mirror.url}/trixie/latest/SHA512SUMS`);
    // debian/13 and debian/trixie are the same entry: a fresh cached copy, no request.
    mirror.requests.length = 0;
    const again = await resolveImage({ name: 'debian/stable', settings: settings(), reporter: recorder() });
    expect(again).toMatchObject({ source: 'cache', path: r.path, cloudInit: true });
    expect(mirror.requests).toEqual([]);
  });

  it('after -image-max-age the checksum file alone re-checks the copy (no second download)', async () => {
    await resolveImage({ name: 'debian/stable', settings: settings(), reporter: recorder() });
    mirror.requests.length = 0;
    const r = await resolveImage({ name: 'debian/stable', settings: settings({ image: { maxAgeMs: 0 } }), reporter: recorder() });
    expect(r.source).toBe('cache');
    expect(mirror.requests).toEqual(['/trixie/latest/SHA512SUMS']);
  });

  it('a wrong SHA512SUMS is refused with a message about the checksum, and nothing is cached', async () => {
    writeSums(`${'c'.repeat(128)}  ${IMAGE}\n`);
    const err = await resolveImage({ name: 'debian/stable', settings: settings(), reporter: recorder() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `debian/stable from .*${IMAGE} has SHA-512 [0-9a-f]{128}, but the checksum file .*SHA512SUMS lists c{128}; the file was discarded`,
      ),
    );
    const cached = await resolveImage({
      name: 'debian/stable',
      settings: settings({ image: { sha256: sha('sha256', path.join(folder(), IMAGE)) } }),
      reporter: recorder(),
    });
    expect(cached.source).toBe('download');
  });

  it('a checksum file that does not list the image, or is missing, stops the boot unless pinned or turned off', async () => {
    writeSums(`${'d'.repeat(128)}  debian-13-nocloud-amd64.qcow2\n`);
    await expect(resolveImage({ name: 'debian/13', settings: settings(), reporter: recorder() })).rejects.toThrow(
      new RegExp(
        /not booting debian\/13: the checksum file .*SHA512SUMS does not list debian-13-genericcloud-amd64.qcow2 /.source +
          /\(it lists debian-13-nocloud-amd64.qcow2\)\. Pin the image's digest with -image-sha256, /.source +
          /or turn checking off with -image-checksum off\./.source,
      ),
    );
    rmSync(path.join(folder(), 'SHA512SUMS'));
    await expect(resolveImage({ name: 'debian/trixie', settings: settings(), reporter: recorder() })).rejects.toThrow(
      /cannot be read \(HTTP 404\)/,
    );
    const rep = recorder();
    const off = await resolveImage({ name: 'debian/trixie', settings: settings({ image: { checksum: 'off' } }), reporter: rep });
    expect(off.source).toBe('download');
    expect(rep.lines.some((l) => /warning: .*booting debian\/trixie unchecked \(-image-checksum off\)/.test(l))).toBe(true);
  });

  it('a pinned -image-sha256 wins over the checksum file (not even fetched)', async () => {
    writeSums('garbage\n');
    const pinned = sha('sha256', path.join(folder(), IMAGE));
    const r = await resolveImage({ name: 'debian/stable', settings: settings({ image: { sha256: pinned } }), reporter: recorder() });
    expect(r.sha256).toBe(pinned);
    expect(mirror.requests).toEqual([`/trixie/latest/${IMAGE}`]);
    await expect(
      resolveImage({
        name: 'debian/stable',
        settings: settings({ image: { sha256: '0'.repeat(64) }, cacheDir: path.join(dir, 'c2') }),
        reporter: recorder(),
      }),
    ).rejects.toThrow(/was pinned \(-image-sha256\)/);
  });

  it('-image-source auto: after the unreachable image server, the catalogue for a name we cannot build', async () => {
    mkdirSync(path.join(root, 'noble', 'release'), { recursive: true });
    const img = path.join(root, 'noble', 'release', 'ubuntu-24.04-server-cloudimg-amd64.img');
    makeQcow2(img, { dataKiB: 64, seed: 7 });
    writeFileSync(path.join(root, 'noble', 'release', 'SHA256SUMS'), `${sha('sha256', img)} *ubuntu-24.04-server-cloudimg-amd64.img\n`);
    const rep = recorder();
    const r = await resolveImage({
      name: 'ubuntu/24.04',
      settings: settings({ image: { source: 'auto', mirrors: [`ubuntu=${mirror.url}`] } }),
      reporter: rep,
    });
    expect(r).toMatchObject({ source: 'download', cloudInit: true, sha256: sha('sha256', img) });
    expect(rep.lines.some((l) => /127\.0\.0\.1:1.*connection was refused.*Trying the catalogue/.test(l))).toBe(true);
  });

  it('-image-mirror must be DISTRO=URL over https (http only on loopback)', async () => {
    await expect(
      resolveImage({
        name: 'debian/stable',
        settings: settings({ image: { mirrors: ['debian=http://mirror.example'] } }),
        reporter: recorder(),
      }),
    ).rejects.toThrow(/must be an https URL/);
  });
});
