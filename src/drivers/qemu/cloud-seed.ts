// The cloud-init NoCloud seed for catalogue images: a small FAT volume
// labelled `cidata` holding meta-data (an instance-id stable per image, so a
// restored clone does not run cloud-init again) and user-data that authorises
// our key for root and changes nothing else. Made with mkfs.vfat + mcopy
// (dosfstools, mtools): npm has no well-kept library that formats a FAT volume.
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureCapabilities, HostRequirementError } from '../../host/requirements.js';
import { DriverError } from '../../core/errors.js';

const execFileP = promisify(execFile);

export interface LoginKey {
  /** PKCS#8 PEM, as the SSH transport reads it. */
  privateKey: Buffer;
  /** `ssh-ed25519 AAAA... djinn`. */
  publicKey: string;
}

/** OpenSSH's one-line form of an ed25519 public key. */
export function openSshPublicKey(privatePem: Buffer | string, comment = 'djinn'): string {
  const jwk = createPublicKey(privatePem).export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new Error('not an ed25519 key');
  const str = (b: Buffer) => Buffer.concat([u32(b.length), b]);
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(Buffer.from(jwk.x, 'base64url'))]);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/**
 * The key root logs in with. Kept in `dir` (the cache folder, 0600) so that
 * a machine restored from a warm-start state, whose cloud-init ran with the
 * seed of an earlier build, still accepts it; made once.
 */
export async function loginKey(dir: string): Promise<LoginKey> {
  const file = path.join(dir, 'id_ed25519');
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const fresh = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, fresh, { mode: 0o600 });
    // Two builds at once: the first rename wins and both read the winner.
    await rename(tmp, file);
    pem = await readFile(file);
  }
  return { privateKey: pem, publicKey: openSshPublicKey(pem) };
}

export interface SeedFiles {
  metaData: string;
  userData: string;
}

/** What the seed says, for one image (its SHA-256 names the instance) and one key. */
export function seedFiles(imageId: string, publicKey: string): SeedFiles {
  const instance = createHash('sha256').update(imageId).digest('hex').slice(0, 16);
  return {
    metaData: `instance-id: iid-djinn-${instance}\nlocal-hostname: djinn\n`,
    // disable_root false: otherwise root's key is wrapped in "Please login as ...".
    // lock_passwd false + "*": an sshd without PAM (Alpine) refuses key logins to a locked account.
    userData: [
      '#cloud-config',
      'disable_root: false',
      'users:',
      '  - default',
      '  - name: root',
      '    lock_passwd: false',
      "    hashed_passwd: '*'",
      '    ssh_authorized_keys:',
      `      - ${publicKey}`,
      '',
    ].join('\n'),
  };
}

/** A digest of the seed's content: it goes into the drive's id, and so into the warm-start key. */
export function seedDigest(files: SeedFiles): string {
  return createHash('sha256').update(files.metaData).update('\0').update(files.userData).digest('hex').slice(0, 16);
}

/** Writes the `cidata` volume (FAT, 1 MiB) into `dir`; returns its path. */
export async function makeSeed(dir: string, files: SeedFiles): Promise<string> {
  const img = path.join(dir, 'cidata.img');
  const md = path.join(dir, 'meta-data');
  const ud = path.join(dir, 'user-data');
  await writeFile(md, files.metaData);
  await writeFile(ud, files.userData);
  await writeFile(img, '');
  await truncate(img, 1024 * 1024);
  // mkfs.vfat lives in /usr/sbin, which is not on a normal user's PATH on Debian.
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`, MTOOLS_SKIP_CHECK: '1' };
  try {
    // A fixed volume id: the same seed gives the same volume.
    await execFileP('mkfs.vfat', ['-n', 'cidata', '-i', '0d5a1e17', img], { env });
    await execFileP('mcopy', ['-o', '-i', img, md, ud, '::'], { env });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new DriverError(
        `cannot make the cloud-init seed: ${e.path ?? 'mkfs.vfat or mcopy'} is missing (install dosfstools and mtools).`,
      );
    throw new DriverError(`cannot make the cloud-init seed: ${(e.stderr || e.message).trim()}`);
  }
  return img;
}

export interface CloudBoot {
  /** The seed drive for LaunchSpec.seed; its id carries the seed's digest into the warm-start key. */
  seed: { file: string; id: string };
  privateKey: Buffer;
}

/** Key and seed for one build of a catalogue image. */
export async function prepareCloudBoot(o: { cacheDir?: string; buildDir: string; imageId: string }): Promise<CloudBoot> {
  // Checked here, so only a catalogue image's boot needs dosfstools and mtools (the front end may install them).
  try {
    await ensureCapabilities(['cloud-seed']);
  } catch (err) {
    if (err instanceof HostRequirementError || (err instanceof Error && err.name === 'InstallError')) throw new DriverError(err.message);
    throw err;
  }
  const key = await loginKey(o.cacheDir ? path.join(o.cacheDir, 'catalogue-key') : o.buildDir);
  const files = seedFiles(o.imageId, key.publicKey);
  const file = await makeSeed(o.buildDir, files);
  return { seed: { file, id: `cidata-${seedDigest(files)}` }, privateKey: key.privateKey };
}

/** Runs a command in the guest, as the SSH session does. */
export type GuestExec = (command: string) => Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }>;

/**
 * Waits until cloud-init has finished its first boot (before the first job, and
 * before a warm-start save). Status 2 (recoverable errors) and a failure are
 * told but do not stop the build: root is already logged in.
 */
export async function waitForCloudInit(exec: GuestExec, log: (line: string) => void, warn: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  log('Waiting for cloud-init to finish (cloud-init status --wait)...');
  const r = await exec(
    'command -v cloud-init >/dev/null 2>&1 || exit 127; cloud-init status --wait >/dev/null 2>&1; s=$?; ' +
      'cloud-init status --long 2>/dev/null | head -n 20; exit $s',
  );
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.code === 127) warn('the image has no cloud-init command; not waiting for it.');
  else if (r.code === 0) log(`cloud-init finished (waited ${secs}s).`);
  else warn(`cloud-init finished with status ${r.code} after ${secs}s: ${r.stdout.toString().trim().split('\n').slice(0, 6).join('; ')}`);
}
