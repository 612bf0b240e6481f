// The CLI's image cache: <cacheDir>/<origin key>/<name>/_image.qcow2 with
// _meta.json beside it. Keyed by where the image comes from (server or URL)
// and its name. Files appear only by atomic rename, so a reader sees either
// the old complete image or the new complete image, never a partial one.
// (Name segments start with a letter or digit, so the `_` files never clash
// with a deeper name such as debian/stable under debian.)
import { createHash } from 'node:crypto';
import { sha256File } from '../../util/sha256.js';
import { copyFile, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Reporter } from '../../core/reporter.js';
import { ImageRejectedError } from '../fetch/errors.js';
import { normalizeSha256 } from '../fetch/download.js';
import { checkQcow2 } from '../fetch/qcow2.js';
import { checkImageName } from '../fetch/server.js';
import { withLock } from './lock.js';

/** Where an image comes from: an image server (the name is appended) or one explicit URL. */
export interface ImageOrigin {
  kind: 'server' | 'url';
  /** The server's base URL, or the image URL itself. */
  base: string;
}

export interface CacheMeta {
  version: 1;
  name: string;
  origin: ImageOrigin;
  /** The URL the file was fetched from (after redirects). */
  url: string;
  size: number;
  sha256: string;
  etag?: string;
  lastModified?: string;
  /** The server listing's mod_time, kept when the server sent no validator. */
  modTime?: string;
  fetchedAt: string;
  /** Last time the server confirmed this copy (or it was fetched). */
  checkedAt: string;
}

/** The metadata of a file downloaded just now: fetched and confirmed at the same moment. */
export function freshMeta(
  name: string,
  origin: ImageOrigin,
  got: Pick<CacheMeta, 'url' | 'size' | 'sha256' | 'etag' | 'lastModified'>,
): CacheMeta {
  const now = new Date().toISOString();
  const { url, size, sha256, etag, lastModified } = got;
  return { version: 1, name, origin, url, size, sha256, etag, lastModified, fetchedAt: now, checkedAt: now };
}

export interface CacheEntry {
  dir: string;
  /** The verified image file. */
  path: string;
  meta: CacheMeta;
}

const IMAGE = '_image.qcow2';
const META = '_meta.json';
const LOCK = '_lock';

export function originKey(o: ImageOrigin): string {
  const host = (() => {
    try {
      return new URL(o.base).host.replace(/[^A-Za-z0-9.-]/g, '_');
    } catch {
      return 'unknown';
    }
  })();
  const digest = createHash('sha256').update(o.base).digest('hex').slice(0, 10);
  return `${o.kind}-${host}-${digest}`;
}

/** What a cached copy is, for cache keys and tool-cache versions: its validator, else the digest. */
export function imageRevision(m: Pick<CacheMeta, 'etag' | 'lastModified' | 'modTime' | 'sha256'>): string {
  return m.etag ?? m.lastModified ?? m.modTime ?? `sha256:${m.sha256}`;
}

export class ImageCache {
  constructor(readonly dir: string) {}

  entryDir(origin: ImageOrigin, name: string): string {
    const bad = checkImageName(name);
    if (bad) throw new ImageRejectedError(bad);
    return path.join(this.dir, originKey(origin), ...name.split('/'));
  }

  imagePath(origin: ImageOrigin, name: string): string {
    return path.join(this.entryDir(origin, name), IMAGE);
  }

  /** The complete entry, or undefined (missing, or its file does not match its metadata). */
  async read(origin: ImageOrigin, name: string): Promise<CacheEntry | undefined> {
    return readEntry(this.entryDir(origin, name));
  }

  /** Runs fn while holding this entry's lock (made, with its folder, when missing). */
  async locked<T>(origin: ImageOrigin, name: string, reporter: Reporter, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const dir = this.entryDir(origin, name);
    await mkdir(dir, { recursive: true });
    try {
      return await withLock(path.join(dir, LOCK), name, reporter, fn, signal);
    } finally {
      // A failed first fetch leaves no empty folders behind.
      if (!(await readEntry(dir))) await this.pruneEmpty(dir);
    }
  }

  /** Records metadata for an image file already renamed into place at imagePath(). */
  async writeMeta(meta: CacheMeta): Promise<CacheEntry> {
    const dir = this.entryDir(meta.origin, meta.name);
    const tmp = path.join(dir, `${META}.tmp-${process.pid}`);
    await writeFile(tmp, `${JSON.stringify(meta, null, 2)}\n`);
    await rename(tmp, path.join(dir, META));
    return { dir, path: path.join(dir, IMAGE), meta };
  }

  /** Marks a copy as confirmed by its server now. */
  async touch(entry: CacheEntry): Promise<CacheEntry> {
    return this.writeMeta({ ...entry.meta, checkedAt: new Date().toISOString() });
  }

  /**
   * Puts a finished image file into the cache (for callers that got it some
   * other way, e.g. the action's caches or a build). The file is verified
   * (qcow2, no backing file, the pinned digest) and copied, or moved when
   * `move` is set; the entry appears atomically, under the entry lock.
   */
  async put(
    file: string,
    meta: { name: string; origin: ImageOrigin; url?: string; sha256?: string; etag?: string; lastModified?: string; modTime?: string },
    opts: { reporter: Reporter; move?: boolean; signal?: AbortSignal },
  ): Promise<CacheEntry> {
    await checkQcow2(file);
    const actual = await sha256File(file);
    if (meta.sha256 && normalizeSha256(meta.sha256) !== actual) {
      throw new ImageRejectedError(`${file} has SHA-256 ${actual}, but ${normalizeSha256(meta.sha256)} was expected; not caching it.`);
    }
    return this.locked(
      meta.origin,
      meta.name,
      opts.reporter,
      async () => {
        const dest = this.imagePath(meta.origin, meta.name);
        const part = `${dest}.part-${process.pid}`;
        try {
          if (opts.move) await rename(file, part).catch(() => copyFile(file, part));
          else await copyFile(file, part);
          const size = (await stat(part)).size;
          await rename(part, dest);
          const now = new Date().toISOString();
          return this.writeMeta({
            version: 1,
            name: meta.name,
            origin: meta.origin,
            url: meta.url ?? (meta.origin.kind === 'url' ? meta.origin.base : ''),
            size,
            sha256: actual,
            etag: meta.etag,
            lastModified: meta.lastModified,
            modTime: meta.modTime,
            fetchedAt: now,
            checkedAt: now,
          });
        } finally {
          await rm(part, { force: true });
        }
      },
      opts.signal,
    );
  }

  /** Every complete entry, sorted by name. */
  async list(): Promise<CacheEntry[]> {
    const found: CacheEntry[] = [];
    const walk = async (dir: string): Promise<void> => {
      const items = await readdir(dir, { withFileTypes: true }).catch(() => []);
      if (items.some((i) => i.name === META)) {
        const e = await readEntry(dir);
        if (e) found.push(e);
      }
      for (const i of items) if (i.isDirectory()) await walk(path.join(dir, i.name));
    };
    await walk(this.dir);
    return found.sort((a, b) => a.meta.name.localeCompare(b.meta.name) || a.meta.url.localeCompare(b.meta.url));
  }

  /** Removes the entries of one name (from every origin), or all entries. Returns what was removed. */
  async remove(which: { name: string } | { all: true }): Promise<CacheEntry[]> {
    const entries = (await this.list()).filter((e) => 'all' in which || e.meta.name === which.name);
    for (const e of entries) {
      await rm(path.join(e.dir, META), { force: true });
      await rm(path.join(e.dir, IMAGE), { force: true });
      await this.pruneEmpty(e.dir);
    }
    return entries;
  }

  /** Removes empty folders from dir up to (not including) the cache folder. */
  private async pruneEmpty(dir: string): Promise<void> {
    let d = dir;
    while (d.startsWith(this.dir + path.sep)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
      d = path.dirname(d);
    }
  }
}

async function readEntry(dir: string): Promise<CacheEntry | undefined> {
  try {
    const meta = JSON.parse(await readFile(path.join(dir, META), 'utf8')) as CacheMeta;
    const file = path.join(dir, IMAGE);
    const st = await stat(file);
    if (meta.version !== 1 || !st.isFile() || st.size !== meta.size) return undefined;
    return { dir, path: file, meta };
  } catch {
    return undefined;
  }
}
