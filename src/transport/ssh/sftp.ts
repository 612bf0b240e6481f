// Promise wrappers over the few ssh2 SFTP calls we use, with the settings that
// make ssh2 fast (see docs/ssh.md): 255 KiB requests, 16 in flight.
import { chmod as chmodLocal } from 'node:fs/promises';
import path from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import type { EntryType, GlobFs } from '../../util/glob.js';

/** OpenSSH's limits@openssh.com max read/write length; larger requests get split. */
export const CHUNK_SIZE = 261120;
export const CONCURRENCY = 16;

const NO_SUCH_FILE = 2;

export interface SftpError extends Error {
  code?: number | string;
}

function call<T>(fn: (cb: (err: SftpError | null | undefined, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

export const stat = (s: SFTPWrapper, p: string) => call<Stats>((cb) => s.stat(p, cb));

export function chmod(s: SFTPWrapper, p: string, mode: number): Promise<void> {
  return call<void>((cb) => s.chmod(p, mode, (err) => cb(err, undefined)));
}

export function isNoSuchFile(err: unknown): boolean {
  return (err as SftpError)?.code === NO_SUCH_FILE;
}

/** `mkdir -p` over SFTP (which creates one level at a time). */
export async function mkdirs(s: SFTPWrapper, dir: string): Promise<void> {
  if (dir === '' || dir === '.' || dir === '/') return;
  try {
    if ((await stat(s, dir)).isDirectory()) return;
  } catch (err) {
    if (!isNoSuchFile(err)) throw err;
  }
  await mkdirs(s, path.posix.dirname(dir));
  await call<void>((cb) => s.mkdir(dir, (err) => cb(err, undefined))).catch(async (err: unknown) => {
    // Lost a race, or it exists: fine as long as it is a folder now.
    if (!(await stat(s, dir).catch(() => null))?.isDirectory()) throw err;
  });
}

/** Uploads with parent folders created, then sets `mode` (also on a file that already existed). */
export async function putFile(s: SFTPWrapper, local: string, remote: string, mode: number): Promise<void> {
  const put = () =>
    call<void>((cb) => s.fastPut(local, remote, { chunkSize: CHUNK_SIZE, concurrency: CONCURRENCY, mode }, (err) => cb(err, undefined)));
  try {
    await put();
  } catch (err) {
    if (!isNoSuchFile(err)) throw err;
    await mkdirs(s, path.posix.dirname(remote));
    await put();
  }
  await chmod(s, remote, mode);
}

/** Streams a remote file to a local one, a few chunks in memory at a time. */
export function getFile(s: SFTPWrapper, remote: string, local: string): Promise<void> {
  return call<void>((cb) => s.fastGet(remote, local, { chunkSize: CHUNK_SIZE, concurrency: CONCURRENCY }, (err) => cb(err, undefined)));
}

/**
 * Keeps a collected file's execute bits, so a binary built in the machine runs
 * once collected. Never more than rwxr-xr-x: nothing collected becomes group-
 * or world-writable.
 */
export async function keepExecBits(local: string, guestMode: number): Promise<void> {
  if (guestMode & 0o111) await chmodLocal(local, (guestMode & 0o755) | 0o600);
}

function typeOf(st: Stats): EntryType {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
}

/** The guest's file system as glob.ts sees it: relative paths are under the login user's home. */
export function sftpGlobFs(s: SFTPWrapper): GlobFs {
  const statType = async (p: string): Promise<EntryType | null> => {
    try {
      return typeOf(await stat(s, p));
    } catch {
      return null;
    }
  };
  return {
    stat: statType,
    async readdir(dir) {
      let list;
      try {
        list = await call<{ filename: string; attrs: Stats }[]>((cb) => s.readdir(dir, cb));
      } catch {
        return null;
      }
      return Promise.all(
        list.map(async (e) => {
          // readdir reports a symlink as itself; follow it as Go's Glob does.
          const type = e.attrs.isSymbolicLink() ? ((await statType(path.posix.join(dir, e.filename))) ?? 'other') : typeOf(e.attrs);
          return { name: e.filename, type };
        }),
      );
    },
  };
}
