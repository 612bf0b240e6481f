// A per-entry lock file so two djinn processes on one machine never fetch the
// same image at the same time. Created with O_EXCL; a lock whose process is
// gone (same host) is broken. Waiters poll; the download itself writes a
// per-process part file, so even a broken lock cannot mix two downloads.
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import type { Reporter } from '../../core/reporter.js';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

const POLL_MS = 200;
/** A lock file still empty after this long belongs to a process that died while creating it. */
const EMPTY_LOCK_STALE_MS = 30_000;

export async function withLock<T>(
  lockPath: string,
  what: string,
  reporter: Reporter,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  let told = false;
  for (;;) {
    if (signal?.aborted) throw new Error(`cancelled while waiting for the lock on ${what}`);
    try {
      const fh = await open(lockPath, 'wx');
      try {
        const owner: LockOwner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
        await fh.writeFile(JSON.stringify(owner));
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another process removed the (then empty) entry folder after a failed fetch: make it again.
      if (code === 'ENOENT') {
        await mkdir(path.dirname(lockPath), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw err;
    }
    const owner = await readOwner(lockPath);
    if (await isStale(lockPath, owner)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (!told) {
      told = true;
      reporter.info(`Waiting for another djinn process${owner ? ` (pid ${owner.pid})` : ''} that is fetching ${what}...`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await readFile(lockPath, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}

async function isStale(lockPath: string, owner: LockOwner | undefined): Promise<boolean> {
  if (!owner) {
    const st = await stat(lockPath).catch(() => undefined);
    return st !== undefined && Date.now() - st.mtimeMs > EMPTY_LOCK_STALE_MS;
  }
  if (owner.host !== os.hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
