// The builder's steps that need root (mmdebstrap's root mode, reading the
// root-owned tree into the ext4 file system, removing the tree) run directly
// as root, else through passwordless sudo. The rest runs as the calling user,
// so the image it leaves belongs to them.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { passwordlessSudo } from '../../host/install.js';
import { BuildError, run, type RunOptions } from './run.js';

export type Privilege = 'root' | 'sudo';

export async function builderPrivilege(): Promise<Privilege> {
  if (process.getuid?.() === 0) return 'root';
  if (await passwordlessSudo()) return 'sudo';
  throw new BuildError(
    'building an image needs root for a moment (mmdebstrap --mode=root and the file owners in the image), and this user has no passwordless sudo. ' +
      'Either run it as root, or allow this user passwordless sudo (e.g. a line "USER ALL=(ALL) NOPASSWD: ALL" in /etc/sudoers.d/), ' +
      'or use a prebuilt image instead of building one (-image-file, -image-url or an image server).',
  );
}

// Proxy settings reach mmdebstrap's apt through sudo, which drops the environment.
const PASSED = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];

/** Runs `cmd args` as root: itself when we are root, else through `sudo -n`. */
export function runAsRoot(priv: Privilege, cmd: string, args: string[], opts: RunOptions = {}): Promise<Buffer> {
  if (priv === 'root') return run(cmd, args, opts);
  const env = PASSED.filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  return run('sudo', ['-n', 'env', 'LC_ALL=C.UTF-8', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...env, cmd, ...args], opts);
}

/** Mount points at or below `dir`, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  const prefix = path.resolve(dir);
  return text
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m): m is string => !!m && (m === prefix || m.startsWith(`${prefix}/`)))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes a (root-owned) tree: first unmounts anything an interrupted
 * mmdebstrap left mounted in it (never deletes through a mount into the host).
 */
export async function removeTree(priv: Privilege, tree: string): Promise<void> {
  for (const m of await mountsUnder(tree)) await runAsRoot(priv, 'umount', ['-l', m]).catch(() => {});
  // An interrupted mmdebstrap's children (dpkg-deb) may still be writing for a moment: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await runAsRoot(priv, 'rm', ['-rf', '--one-file-system', tree]);
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(1000 * attempt);
    }
  }
}
