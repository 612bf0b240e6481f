// The catalogue's checksum parsers, folder-listing readers and name resolution,
// on fixture files written in each distribution's published format (the
// digests are SHA-256/512 of the file names, so the test can recompute them).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChecksumFileError, digestFor, parseChecksumFile } from '../src/images/catalogue/checksums.js';
import { compareVersions, listedFiles } from '../src/images/catalogue/index-page.js';
import {
  catalogueNames,
  CatalogueError,
  describe as describeRef,
  findInCatalogue,
  locate,
  parseMirrors,
} from '../src/images/catalogue/lookup.js';

const dir = path.join(__dirname, 'fixtures', 'checksums');
const fixture = (f: string) => readFileSync(path.join(dir, f), 'utf8');
const sha = (alg: string, s: string) => createHash(alg).update(s).digest('hex');

describe('checksum files', () => {
  it('Debian SHA512SUMS: the genericcloud qcow2 line, not the nocloud or raw one', () => {
    const f = 'debian-13-genericcloud-amd64.qcow2';
    expect(digestFor(fixture('debian-SHA512SUMS'), 'gnu', 'sha512', f, 'SHA512SUMS')).toEqual({
      algorithm: 'sha512',
      hex: sha('sha512', f),
    });
    expect(parseChecksumFile(fixture('debian-SHA512SUMS'), 'gnu', 'sha512').size).toBe(5);
  });

  it('Ubuntu SHA256SUMS with the binary marker', () => {
    const f = 'ubuntu-24.04-server-cloudimg-amd64.img';
    expect(digestFor(fixture('ubuntu-SHA256SUMS'), 'gnu', 'sha256', f, 'SHA256SUMS').hex).toBe(sha('sha256', f));
  });

  it("Fedora's clear-signed CHECKSUM: BSD lines inside the signed message, byte-count comments skipped", () => {
    const f = 'Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2';
    const all = parseChecksumFile(fixture('Fedora-Cloud-43-1.6-x86_64-CHECKSUM'), 'bsd', 'sha256');
    expect([...all.keys()]).toHaveLength(3);
    expect(all.get(f)?.hex).toBe(sha('sha256', f));
  });

  it('Rocky and openSUSE sidecars that name the dated file: the one digest is taken for the latest name', () => {
    expect(
      digestFor(
        fixture('Rocky-9-GenericCloud-Base.latest.x86_64.qcow2.CHECKSUM'),
        'bsd',
        'sha256',
        'Rocky-9-GenericCloud-Base.latest.x86_64.qcow2',
        'x',
        true,
      ).hex,
    ).toBe(sha('sha256', 'rocky9'));
    expect(
      digestFor(
        fixture('Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2.sha256'),
        'gnu',
        'sha256',
        'Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2',
        'x',
        true,
      ).hex,
    ).toBe(sha('sha256', 'leap'));
    // Not a sidecar: a file that is not listed is an error.
    expect(() =>
      digestFor(fixture('Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2.sha256'), 'gnu', 'sha256', 'Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2', 'x'),
    ).toThrow(/does not list/);
  });

  it('Arch .SHA256 and Alpine .sha512 (bare digest) sidecars', () => {
    expect(
      digestFor(fixture('Arch-Linux-x86_64-cloudimg.qcow2.SHA256'), 'bare', 'sha256', 'Arch-Linux-x86_64-cloudimg.qcow2', 'x', true).hex,
    ).toBe(sha('sha256', 'arch'));
    const alp = 'nocloud_alpine-3.22.2-x86_64-bios-cloudinit-r0.qcow2';
    expect(digestFor(fixture(`${alp}.sha512`), 'bare', 'sha512', alp, 'x', true)).toEqual({
      algorithm: 'sha512',
      hex: sha('sha512', 'alpine'),
    });
  });

  it('AlmaLinux folder CHECKSUM and FreeBSD CHECKSUM.SHA256', () => {
    const a = 'AlmaLinux-9-GenericCloud-latest.x86_64.qcow2';
    expect(digestFor(fixture('almalinux-CHECKSUM'), 'gnu', 'sha256', a, 'x').hex).toBe(sha('sha256', a));
    const b = 'FreeBSD-14.3-RELEASE-amd64-BASIC-CLOUDINIT-zfs.raw.xz';
    expect(digestFor(fixture('freebsd-CHECKSUM.SHA256'), 'bsd', 'sha256', b, 'x').hex).toBe(sha('sha256', b));
  });

  it('says what a checksum file lists when the image is missing, and refuses a file without digests', () => {
    expect(() => digestFor(fixture('debian-SHA512SUMS'), 'gnu', 'sha512', 'debian-13-generic-amd64.qcow2', 'http://m/SHA512SUMS')).toThrow(
      /SHA512SUMS does not list debian-13-generic-amd64.qcow2 \(it lists debian-13-genericcloud-amd64.json/,
    );
    expect(() => digestFor('<!DOCTYPE html><html>Not Found</html>', 'gnu', 'sha512', 'a.qcow2', 'http://m/SHA512SUMS')).toThrow(
      ChecksumFileError,
    );
    // A SHA-256 list read as SHA-512 has no usable lines.
    expect(() => digestFor(fixture('ubuntu-SHA256SUMS'), 'gnu', 'sha512', 'ubuntu-24.04-server-cloudimg-amd64.img', 'x')).toThrow(
      /lists no SHA512/,
    );
  });
});

describe('folder listings', () => {
  it('Fedora (Apache): the Generic qcow2 and its build number give the CHECKSUM name', async () => {
    const ref = findInCatalogue('fedora/43')!;
    const got = await locate(ref, async () => fixture('fedora-index.html'));
    expect(got.imageUrl).toBe(
      'https://download.fedoraproject.org/pub/fedora/linux/releases/43/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2',
    );
    expect(got.checksumUrl).toBe(
      'https://download.fedoraproject.org/pub/fedora/linux/releases/43/Cloud/x86_64/images/Fedora-Cloud-43-1.6-x86_64-CHECKSUM',
    );
    // The name found is one the CHECKSUM fixture lists.
    expect(parseChecksumFile(fixture('Fedora-Cloud-43-1.6-x86_64-CHECKSUM'), 'bsd', 'sha256').has(got.file)).toBe(true);
  });

  it('Alpine (nginx): the newest patch release of the bios cloudinit variant (3.22.10 > 3.22.2)', async () => {
    const got = await locate(findInCatalogue('alpine/3.22')!, async () => fixture('alpine-index.html'));
    expect(got.file).toBe('nocloud_alpine-3.22.10-x86_64-bios-cloudinit-r0.qcow2');
    expect(got.checksumUrl).toBe(`${got.imageUrl}.sha512`);
    expect(listedFiles(fixture('alpine-index.html'))).not.toContain('../');
    expect(compareVersions('3.22.10', '3.22.9')).toBeGreaterThan(0);
  });

  it('a listing without a matching file, or one that cannot be read, is a clear error', async () => {
    await expect(locate(findInCatalogue('alpine/3.22')!, async () => '<html></html>')).rejects.toThrow(/has no file like nocloud_alpine-/);
    await expect(locate(findInCatalogue('fedora/44')!, async () => Promise.reject(new Error('HTTP 404')))).rejects.toThrow(
      /cannot read the folder listing .*44.*HTTP 404/,
    );
  });
});

describe('names', () => {
  it('Debian by alias, number and codename are one entry', () => {
    const urls = ['debian/stable', 'debian/13', 'debian/trixie'].map((n) => describeRef(findInCatalogue(n)!));
    expect(new Set(urls.map((u) => u.imageUrl)).size).toBe(1);
    expect(urls[0]).toEqual({
      imageUrl: 'https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2',
      checksumUrl: 'https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS',
    });
    expect(describeRef(findInCatalogue('debian/oldstable')!).imageUrl).toContain('bookworm/latest/debian-12-genericcloud');
  });

  it('ubuntu, rocky, almalinux, opensuse, arch, freebsd', () => {
    expect(describeRef(findInCatalogue('ubuntu/noble')!).imageUrl).toBe(
      'https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img',
    );
    expect(describeRef(findInCatalogue('ubuntu/22.04')!).checksumUrl).toBe(
      'https://cloud-images.ubuntu.com/releases/jammy/release/SHA256SUMS',
    );
    expect(describeRef(findInCatalogue('rocky/9')!).checksumUrl).toBe(
      'https://dl.rockylinux.org/pub/rocky/9/images/x86_64/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2.CHECKSUM',
    );
    expect(describeRef(findInCatalogue('almalinux/9')!).checksumUrl).toBe(
      'https://repo.almalinux.org/almalinux/9/cloud/x86_64/images/CHECKSUM',
    );
    expect(describeRef(findInCatalogue('opensuse/leap-15.6')!).imageUrl).toBe(
      'https://download.opensuse.org/distribution/leap/15.6/appliances/Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2',
    );
    expect(describeRef(findInCatalogue('opensuse/tumbleweed')!).imageUrl).toBe(
      'https://download.opensuse.org/tumbleweed/appliances/openSUSE-Tumbleweed-Minimal-VM.x86_64-Cloud.qcow2',
    );
    expect(describeRef(findInCatalogue('arch')!).checksumUrl).toBe(
      'https://geo.mirror.pkgbuild.com/images/latest/Arch-Linux-x86_64-cloudimg.qcow2.SHA256',
    );
    expect(findInCatalogue('freebsd/14.3')!.distro.bootable).toBe(false);
  });

  it('names it does not have', () => {
    for (const n of ['debian/sid', 'ubuntu/23.10', 'fedora/12', 'arch/latest', 'opensuse/15.6', 'centos/9', 'debian/stable/x', 'rocky/7'])
      expect(findInCatalogue(n), n).toBeUndefined();
  });

  it('-image-mirror replaces the base; http only for loopback', () => {
    const m = parseMirrors(['debian=http://127.0.0.1:8099/']);
    expect(describeRef(findInCatalogue('debian/stable', m)!).imageUrl).toBe(
      'http://127.0.0.1:8099/trixie/latest/debian-13-genericcloud-amd64.qcow2',
    );
    expect(() => parseMirrors(['debian=http://mirror.example/x'])).toThrow(/must be an https URL/);
    expect(() => parseMirrors(['gentoo=https://x.example'])).toThrow(CatalogueError);
    expect(() => parseMirrors(['debian'])).toThrow(/expected DISTRO=URL/);
  });

  it('every listed name resolves back to its own entry', () => {
    const names = catalogueNames();
    expect(names.length).toBeGreaterThan(30);
    for (const r of names) expect(findInCatalogue(r.name)?.release.version, r.name).toBe(r.release.version);
  });
});

describe('djinn image ls --catalogue', () => {
  it('lists every name with its image and checksum URL (mirrors applied), as text and JSON', async () => {
    const { runCli } = await import('./helpers/cli.js');
    const json = await runCli(['image', 'ls', '--catalogue', '--json', '-image-mirror', 'debian=https://mirror.example/cloud']);
    expect(json.code, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as { name: string; imageUrl: string; checksumUrl: string; bootable: boolean }[];
    expect(rows.map((r) => r.name)).toEqual(catalogueNames().map((r) => r.name));
    expect(rows.find((r) => r.name === 'debian/stable')).toMatchObject({
      imageUrl: 'https://mirror.example/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2',
      checksumUrl: 'https://mirror.example/cloud/trixie/latest/SHA512SUMS',
    });
    expect(rows.find((r) => r.name === 'freebsd/14.3')?.bootable).toBe(false);
    const text = await runCli(['image', 'ls', '--catalogue']);
    expect(text.stdout).toContain(
      'ubuntu/noble\n    image    ' +
        'https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img\n' +
        '    checksum https://cloud-images.ubuntu.com/releases/noble/release/SHA256SUMS (sha256 gnu)',
    );
    expect(text.stdout).toMatch(new RegExp(`^${rows.length} names from 9 distributions`, 'm'));
  });
});
