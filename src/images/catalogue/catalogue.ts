// The catalogue of official cloud images, as data: image name -> where the
// file is, how to verify it, what the guest needs. Paths are patterns under a
// distribution's base URL (`-image-mirror DISTRO=URL` replaces the base):
//   {version} {codename}  from the release row (or the name itself),
//   {file} {build}        from the folder listing (`index`), for names that carry a build number,
//   {image}               the image's own path (for checksum sidecars next to it).
// URLs follow the distributions' published layouts; see docs/catalogue.md for
// which entries were booted for real.
import type { ChecksumFormat, DigestAlgorithm } from './checksums.js';

export interface Release {
  version: string;
  codename?: string;
  /** Other names for it: debian/stable, ubuntu/noble, ... */
  aliases?: string[];
  /** Overrides for this release (e.g. Debian testing has daily builds only). */
  image?: string;
  checksum?: string;
}

export interface Distro {
  distro: string;
  base: string;
  /** Known releases (listed by `djinn image ls --catalogue`). */
  releases: Release[];
  /** Versions accepted beyond the known rows (e.g. any fedora/<N>); undefined = known rows only. */
  anyVersion?: RegExp;
  /** How the name's last part is written: `leap-{version}` for openSUSE; `{version}` by default. */
  versionForm?: RegExp;
  /** `arch`-style names without a version. */
  unversioned?: boolean;
  image: string;
  /** A folder listing to pick {file} (and {build}) from: the newest file matching `file` (its first group is the build). */
  index?: { folder: string; file: string };
  checksum: {
    path: string;
    format: ChecksumFormat;
    algorithm: DigestAlgorithm;
    /** The file describes only this image. */ sidecar?: boolean;
  };
  diskFormat: 'qcow2' | 'raw';
  compression?: 'xz';
  firmware: 'bios' | 'uefi';
  /** The distribution's default user (ours is root, authorised by the seed). */
  user: string;
  /** False when we cannot boot it yet (the reason is in `note`); it still resolves and lists. */
  bootable: boolean;
  note?: string;
}

export const CATALOGUE: Distro[] = [
  {
    distro: 'debian',
    base: 'https://cloud.debian.org/images/cloud',
    releases: [
      { version: '11', codename: 'bullseye' },
      { version: '12', codename: 'bookworm', aliases: ['oldstable'] },
      { version: '13', codename: 'trixie', aliases: ['stable'] },
      {
        version: '14',
        codename: 'forky',
        aliases: ['testing'],
        image: '{codename}/daily/latest/debian-{version}-genericcloud-amd64-daily.qcow2',
        checksum: '{codename}/daily/latest/SHA512SUMS',
      },
    ],
    image: '{codename}/latest/debian-{version}-genericcloud-amd64.qcow2',
    checksum: { path: '{codename}/latest/SHA512SUMS', format: 'gnu', algorithm: 'sha512' },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'debian',
    bootable: true,
    note: 'genericcloud (the nocloud variant has no cloud-init)',
  },
  {
    distro: 'ubuntu',
    base: 'https://cloud-images.ubuntu.com/releases',
    releases: [
      { version: '22.04', codename: 'jammy' },
      { version: '24.04', codename: 'noble' },
      { version: '26.04', codename: 'resolute' },
    ],
    image: '{codename}/release/ubuntu-{version}-server-cloudimg-amd64.img',
    checksum: { path: '{codename}/release/SHA256SUMS', format: 'gnu', algorithm: 'sha256' },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'ubuntu',
    bootable: true,
    note: 'qcow2 despite the .img name',
  },
  {
    distro: 'fedora',
    base: 'https://download.fedoraproject.org/pub/fedora/linux/releases',
    releases: [{ version: '42' }, { version: '43' }, { version: '44' }],
    anyVersion: /^(4[1-9]|[5-9]\d)$/,
    index: { folder: '{version}/Cloud/x86_64/images/', file: 'Fedora-Cloud-Base-Generic-{version}-([0-9.]+)\\.x86_64\\.qcow2' },
    image: '{version}/Cloud/x86_64/images/{file}',
    checksum: { path: '{version}/Cloud/x86_64/images/Fedora-Cloud-{version}-{build}-x86_64-CHECKSUM', format: 'bsd', algorithm: 'sha256' },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'fedora',
    bootable: true,
    note: 'the build number comes from the folder listing; CHECKSUM is PGP clear-signed',
  },
  {
    distro: 'alpine',
    base: 'https://dl-cdn.alpinelinux.org/alpine',
    releases: [{ version: '3.21' }, { version: '3.22' }, { version: '3.23' }],
    anyVersion: /^3\.\d+$/,
    index: { folder: 'v{version}/releases/cloud/', file: 'nocloud_alpine-({version}\\.\\d+)-x86_64-bios-cloudinit-r0\\.qcow2' },
    image: 'v{version}/releases/cloud/{file}',
    checksum: { path: '{image}.sha512', format: 'bare', algorithm: 'sha512', sidecar: true },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'alpine',
    bootable: true,
    note: 'the cloudinit variant (tiny-cloud ignores #cloud-config); sshd without PAM: root must not be locked',
  },
  {
    distro: 'arch',
    base: 'https://geo.mirror.pkgbuild.com/images',
    releases: [{ version: 'latest' }],
    unversioned: true,
    image: 'latest/Arch-Linux-x86_64-cloudimg.qcow2',
    checksum: { path: '{image}.SHA256', format: 'bare', algorithm: 'sha256', sidecar: true },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'arch',
    bootable: true,
  },
  {
    distro: 'rocky',
    base: 'https://dl.rockylinux.org/pub/rocky',
    releases: [{ version: '8' }, { version: '9' }, { version: '10' }],
    image: '{version}/images/x86_64/Rocky-{version}-GenericCloud-Base.latest.x86_64.qcow2',
    checksum: { path: '{image}.CHECKSUM', format: 'bsd', algorithm: 'sha256', sidecar: true },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'rocky',
    bootable: true,
    note: 'Rocky 10 needs x86-64-v3 (KVM with -cpu host)',
  },
  {
    distro: 'almalinux',
    base: 'https://repo.almalinux.org/almalinux',
    releases: [{ version: '8' }, { version: '9' }, { version: '10' }],
    image: '{version}/cloud/x86_64/images/AlmaLinux-{version}-GenericCloud-latest.x86_64.qcow2',
    checksum: { path: '{version}/cloud/x86_64/images/CHECKSUM', format: 'gnu', algorithm: 'sha256' },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'almalinux',
    bootable: true,
    note: 'AlmaLinux 10 needs x86-64-v3 (KVM with -cpu host)',
  },
  {
    distro: 'opensuse',
    base: 'https://download.opensuse.org',
    releases: [
      { version: '15.6' },
      { version: '16.0' },
      {
        version: 'tumbleweed',
        image: 'tumbleweed/appliances/openSUSE-Tumbleweed-Minimal-VM.x86_64-Cloud.qcow2',
      },
    ],
    anyVersion: /^1[5-9]\.\d$/,
    versionForm: /^leap-(.+)$|^(tumbleweed)$/,
    image: 'distribution/leap/{version}/appliances/Leap-{version}-Minimal-VM.x86_64-Cloud.qcow2',
    checksum: { path: '{image}.sha256', format: 'gnu', algorithm: 'sha256', sidecar: true },
    diskFormat: 'qcow2',
    firmware: 'bios',
    user: 'opensuse',
    bootable: true,
    note: 'undated names are replaced in place; Leap 16 default user is sles',
  },
  {
    distro: 'freebsd',
    base: 'https://download.freebsd.org/releases/VM-IMAGES',
    releases: [{ version: '13.5' }, { version: '14.3' }, { version: '15.0' }],
    anyVersion: /^1[3-9]\.\d$/,
    image: '{version}-RELEASE/amd64/Latest/FreeBSD-{version}-RELEASE-amd64-BASIC-CLOUDINIT-zfs.raw.xz',
    checksum: { path: '{version}-RELEASE/amd64/Latest/CHECKSUM.SHA256', format: 'bsd', algorithm: 'sha256' },
    diskFormat: 'raw',
    compression: 'xz',
    firmware: 'bios',
    user: 'freebsd',
    bootable: false,
    note: 'resolved only: an xz-compressed raw disk (we download qcow2 only), and nuageinit has no disable_root',
  },
];
