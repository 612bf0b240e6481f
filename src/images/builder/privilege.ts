// The builder's steps that need root (mmdebstrap, reading the root-owned
// tree into the ext4 file system, removing the tree) run directly as root,
// else through passwordless sudo, else in a user namespace that maps the
// user's /etc/subuid range (mmdebstrap's unshare mode). The rest runs as the
// calling user, so the image it leaves belongs to them.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { passwordlessSudo } from '../../host/install.js';
import { aptLine, missingFor } from '../../host/requirements.js';
import { BuildError, run, type RunOptions } from './run.js';

/** userns: root inside a user namespace of our own (see usernsArgs); mmdebstrap then runs in its unshare mode. */
export type Privilege = 'root' | 'sudo' | 'userns';

export async function builderPrivilege(): Promise<Privilege> {
  if (process.getuid?.() === 0) return 'root';
  if (await passwordlessSudo()) return 'sudo';
  const why = await usernsProblem();
  if (!why) return 'userns';
  const user = os.userInfo().username;
  throw new BuildError(
    'building an image needs root for a moment (mmdebstrap and the file owners in the image), and this user has no passwordless sudo. ' +
      'Either run it as root; or allow this user passwordless sudo (e.g. a line "USER ALL=(ALL) NOPASSWD: ALL" in /etc/sudoers.d/); ' +
      `or let it use unprivileged user namespaces: the package uidmap (newuidmap, newgidmap) and ranges for ${user} ` +
      `in /etc/subuid and /etc/subgid (e.g. "${user}:100000:65536"; here: ${why}). ` +
      'Or use a prebuilt image instead of building one (-image-file, -image-url or an image server).',
  );
}

interface IdRange {
  start: number;
  count: number;
}

/** The user's first range in /etc/subuid or /etc/subgid (by name or number), as newuidmap reads it. */
export function subordinateRange(file: string, user: string, id: number): IdRange | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === user || who === String(id)) && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? ''))
      return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

/** A Debian tree uses ids up to 65534 (nobody). */
const MIN_IDS = 65536;

/**
 * unshare(1)'s options for our namespace: ids 0.. map to the user's subordinate
 * ranges (root in the tree is the first of them), and the user itself to the id
 * after them, so that the namespace's root can also write the user's own files
 * (the raw disk, the work folder). The comma form (outer,inner,count) is read
 * by util-linux 2.38 and later.
 */
export function usernsArgs(): string[] {
  const user = os.userInfo();
  const uids = subordinateRange('/etc/subuid', user.username, user.uid);
  const gids = subordinateRange('/etc/subgid', user.username, user.gid);
  if (!uids || !gids) throw new BuildError(`no range for ${user.username} in /etc/subuid and /etc/subgid.`);
  return [
    `--map-user=${uids.count}`,
    `--map-group=${gids.count}`,
    `--map-users=${uids.start},0,${uids.count}`,
    `--map-groups=${gids.start},0,${gids.count}`,
    '--setuid=0',
    '--setgid=0',
  ];
}

/** Why this user cannot use our user namespace (undefined when it can): tried for real, in a few milliseconds. */
export async function usernsProblem(): Promise<string | undefined> {
  const missing = missingFor(['image-build-userns']);
  if (missing.programs.length) return `${missing.programs.join(', ')} missing (${aptLine(missing.packages, false)})`;
  const user = os.userInfo();
  for (const [file, id] of [
    ['/etc/subuid', user.uid],
    ['/etc/subgid', user.gid],
  ] as const) {
    const range = subordinateRange(file, user.username, id);
    if (!range) return `${file} has no range for ${user.username}`;
    if (range.count < MIN_IDS) return `the range in ${file} has ${range.count} ids, fewer than ${MIN_IDS}`;
  }
  // mmdebstrap then unshares the mount and PID namespaces as that namespace's root.
  try {
    await run('unshare', [...usernsArgs(), '--', 'unshare', '--mount', '--pid', '--fork', '--propagation', 'unchanged', 'true']);
  } catch (err) {
    const detail = (err as Error).message.split('\n').slice(1).join(' ').trim();
    return (
      `the kernel refused the user namespace${detail ? ` (${detail})` : ''}; Ubuntu 23.10 and later restrict them ` +
      `through AppArmor (sysctl kernel.apparmor_restrict_unprivileged_userns)`
    );
  }
  return undefined;
}

// Proxy settings reach mmdebstrap's apt through sudo, which drops the environment.
const PASSED = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];

/** Runs `cmd args` as root: itself when we are root, else through `sudo -n`, else as our user namespace's root. */
export function runAsRoot(priv: Privilege, cmd: string, args: string[], opts: RunOptions = {}): Promise<Buffer> {
  if (priv === 'root') return run(cmd, args, opts);
  if (priv === 'userns') return run('unshare', [...usernsArgs(), '--', cmd, ...args], opts);
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
  // (In a user namespace, mmdebstrap's mounts were in a mount namespace of its own: gone with it.)
  if (priv !== 'userns') for (const m of await mountsUnder(tree)) await runAsRoot(priv, 'umount', ['-l', m]).catch(() => {});
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
