// What goes into an image. Part of the builder's inputs: scripts/test-image.sh hashes this folder.
export type Flavor = 'fast' | 'systemd' | 'cloud';

export const MIRROR = process.env.DJINN_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
export const SECURITY_MIRROR = process.env.DJINN_DEBIAN_SECURITY_MIRROR || 'http://deb.debian.org/debian-security';

/**
 * The cloud kernel is small and has virtio as modules (loaded by our initrd);
 * busybox-static gives the fast flavor its init and an in-process rc script
 * (every dynamic exec costs 50-100 ms under software emulation).
 */
const COMMON = [
  'linux-image-cloud-amd64',
  'openssh-server',
  'openssh-sftp-server',
  'git',
  'ca-certificates',
  'iproute2',
  'kmod',
  'netbase',
  'procps',
  'less',
  'busybox-static',
  'perl-base',
];

const SYSTEMD = ['systemd-sysv', 'udev', 'dbus'];

/** cloud: like Debian's genericcloud image (sudo, e2fsprogs for cloud-init's resizefs), root login only through what cloud-init writes from a seed. */
export function packagesFor(flavor: Flavor): string[] {
  if (flavor === 'systemd') return [...COMMON, ...SYSTEMD];
  if (flavor === 'cloud') return [...COMMON, ...SYSTEMD, 'cloud-init', 'sudo', 'e2fsprogs'];
  return COMMON;
}
