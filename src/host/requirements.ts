// What each capability needs on the host, in one place: the programs (and a
// few files), and the Debian/Ubuntu package that provides each. Checked with
// PATH lookups only (well under a second), before any long work starts, so a
// missing tool is reported once, with everything else that is missing and the
// one apt-get line that installs it all.
import { existsSync } from 'node:fs';
import path from 'node:path';

export type Capability = 'qemu' | 'image-build' | 'image-build-userns' | 'cloud-seed' | 'docker' | 'actions-cache';

export interface Requirement {
  /** A program looked up on PATH (and the sbin folders), or an absolute file path. */
  need: string;
  /** The Debian/Ubuntu package that provides it. */
  pkg: string;
  /** Any one of these files will do (for files that moved between releases). */
  anyOf?: string[];
}

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const SYSLINUX_MBR = ['/usr/lib/syslinux/mbr/mbr.bin', '/usr/lib/SYSLINUX/mbr.bin'];

export const REQUIREMENTS: Record<Capability, Requirement[]> = {
  qemu: [
    { need: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
    { need: 'qemu-img', pkg: 'qemu-utils' },
  ],
  'image-build': [
    { need: 'mmdebstrap', pkg: 'mmdebstrap' },
    // Debian's signing keys: an Ubuntu host's apt does not have them.
    { need: DEBIAN_KEYRING, pkg: 'debian-archive-keyring' },
    // mmdebstrap's root mode mounts /proc, /sys and /dev in the tree.
    { need: 'mount', pkg: 'mount' },
    { need: 'sfdisk', pkg: 'fdisk' },
    { need: 'mkfs.fat', pkg: 'dosfstools' },
    { need: 'mcopy', pkg: 'mtools' },
    { need: 'syslinux', pkg: 'syslinux' },
    { need: 'mbr.bin', pkg: 'syslinux-common', anyOf: SYSLINUX_MBR },
    { need: 'mke2fs', pkg: 'e2fsprogs' },
    { need: 'cpio', pkg: 'cpio' },
    { need: 'gzip', pkg: 'gzip' },
    { need: 'ssh-keygen', pkg: 'openssh-client' },
    { need: 'zstd', pkg: 'zstd' },
    { need: 'xz', pkg: 'xz-utils' },
    { need: 'tar', pkg: 'tar' },
    { need: 'qemu-img', pkg: 'qemu-utils' },
  ],
  // Only for a user with neither root nor passwordless sudo: mmdebstrap's unshare mode maps the
  // user's /etc/subuid and /etc/subgid ranges into a user namespace through these setuid helpers.
  'image-build-userns': [
    { need: 'newuidmap', pkg: 'uidmap' },
    { need: 'newgidmap', pkg: 'uidmap' },
    { need: 'unshare', pkg: 'util-linux' },
  ],
  // A catalogue (cloud) image boots with a cloud-init seed: a small FAT volume (cloud-seed.ts).
  'cloud-seed': [
    { need: 'mkfs.vfat', pkg: 'dosfstools' },
    { need: 'mcopy', pkg: 'mtools' },
  ],
  docker: [{ need: 'dockerd', pkg: 'docker.io' }],
  // @actions/cache compresses with zstd when it is on PATH and keys an entry by its compression, so a
  // job without zstd misses what a job with it saved (hosted runners have it; a minimal runner may not).
  'actions-cache': [{ need: 'zstd', pkg: 'zstd' }],
};

// Tools in /usr/sbin are not on a normal user's PATH on Debian, but run fine.
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function found(req: Requirement, env: NodeJS.ProcessEnv): boolean {
  if (req.anyOf) return req.anyOf.some((f) => existsSync(f));
  if (path.isAbsolute(req.need)) return existsSync(req.need);
  const dirs = [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SBIN];
  return dirs.some((d) => existsSync(path.join(d, req.need)));
}

export interface Missing {
  capabilities: Capability[];
  /** What is missing, e.g. sfdisk, mkfs.fat. */
  programs: string[];
  /** The packages that provide them, without duplicates, in table order. */
  packages: string[];
}

/** What the given capabilities need that this host lacks; empty lists when nothing is missing. */
export function missingFor(capabilities: Capability[], env: NodeJS.ProcessEnv = process.env): Missing {
  const programs: string[] = [];
  const packages: string[] = [];
  for (const cap of capabilities) {
    for (const req of REQUIREMENTS[cap]) {
      if (programs.includes(req.need) || found(req, env)) continue;
      programs.push(req.need);
      if (!packages.includes(req.pkg)) packages.push(req.pkg);
    }
  }
  return { capabilities, programs, packages };
}

/** The capabilities of `m` with something missing (a program two of them need counts for both). */
export function capabilitiesLacking(m: Missing): Capability[] {
  return m.capabilities.filter((c) => REQUIREMENTS[c].some((req) => m.programs.includes(req.need)));
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The one command line that installs the packages (sudo when not root). */
export function aptLine(packages: string[], root = isRoot()): string {
  return `${root ? '' : 'sudo '}apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

const WHAT: Record<Capability, string> = {
  qemu: 'running a qemu build',
  'image-build': 'building an image',
  'image-build-userns': 'building an image in a user namespace',
  'cloud-seed': 'booting a cloud image (its cloud-init seed)',
  docker: 'the docker driver',
  'actions-cache': 'the Actions cache',
};

/** The one-paragraph message for what is missing. */
export function missingMessage(m: Missing, root = isRoot()): string {
  const what = m.capabilities.map((c) => WHAT[c]).join(' and ');
  return `${what} needs programs this machine does not have: ${m.programs.join(', ')}. Install them with: ${aptLine(m.packages, root)}`;
}

export class HostRequirementError extends Error {
  constructor(
    message: string,
    readonly missing: Missing,
  ) {
    super(message);
    this.name = 'HostRequirementError';
  }
}

/**
 * What a front end does when a capability is about to be used and something
 * is missing: the action installs it, the CLI installs it with -install-deps
 * or fails with the apt-get line. The default fails.
 */
export type MissingHandler = (missing: Missing) => Promise<void>;

let handler: MissingHandler = async (m) => {
  throw new HostRequirementError(missingMessage(m), m);
};

export function onMissing(h: MissingHandler): void {
  handler = h;
}

/** Checks the capabilities and hands anything missing to the front end's handler; throws if still missing after it. */
export async function ensureCapabilities(capabilities: Capability[]): Promise<void> {
  const m = missingFor(capabilities);
  if (!m.programs.length) return;
  await handler(m);
  const still = missingFor(capabilities);
  if (still.programs.length) throw new HostRequirementError(missingMessage(still), still);
}
