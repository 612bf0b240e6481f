// Sources 3 and 4 of resolveImage: our cache, else a download (an explicit
// -image-url or the image server). A cached copy is used as is while younger
// than -image-max-age (or when it has the pinned digest); after that it is
// revalidated with ETag / Last-Modified (or the listing's mod_time).
import { UsageError } from '../../core/errors.js';
import type { DriverSettings } from '../../config/settings.js';
import type { Reporter } from '../../core/reporter.js';
import type { ResolvedImage } from '../resolved.js';
import { freshMeta, ImageCache, type CacheEntry, type ImageOrigin } from '../cache/store.js';
import { downloadImage, normalizeSha256, type DownloadOptions } from './download.js';
import { DownloadError, ImageNotFoundError, ImageRejectedError } from './errors.js';
import { checkImageName, DEFAULT_IMAGE_SERVER, imageUrl, notFoundError, serverModTime } from './server.js';
import path from 'node:path';

/** Knobs for tests and benchmarks; users get the defaults. */
export interface HttpTuning {
  idleTimeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
}

export interface FetchRequest {
  name: string;
  settings: DriverSettings;
  reporter: Reporter;
  signal?: AbortSignal;
  http?: HttpTuning;
}

export function originFor(settings: DriverSettings): ImageOrigin {
  if (settings.image.url) return { kind: 'url', base: settings.image.url };
  return { kind: 'server', base: settings.image.server || DEFAULT_IMAGE_SERVER };
}

/** The URL an image is downloaded from under these settings. */
export function downloadUrl(origin: ImageOrigin, name: string): string {
  return origin.kind === 'url' ? origin.base : imageUrl(origin.base, name);
}

function pinnedDigest(settings: DriverSettings): string | undefined {
  if (!settings.image.sha256) return undefined;
  try {
    return normalizeSha256(settings.image.sha256);
  } catch (err) {
    throw new UsageError((err as Error).message, {}, '-image-sha256');
  }
}

function checkUrl(url: string, field: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`"${url}" is not a URL.`, {}, field);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`"${url}" must be an http or https URL.`, {}, field);
}

/** Cache, then download. Throws ImageNotFoundError / DownloadError so the caller may fall back to a build. */
export async function cachedOrDownloaded(req: FetchRequest): Promise<ResolvedImage> {
  const { name, settings, reporter } = req;
  const bad = checkImageName(name);
  if (bad) throw new UsageError(`${bad}.`, {}, 'image');
  const origin = originFor(settings);
  checkUrl(origin.base, origin.kind === 'url' ? '-image-url' : '-image-server');
  const pinned = pinnedDigest(settings);
  const url = downloadUrl(origin, name);
  const base: Omit<DownloadOptions, 'dest'> = {
    url,
    label: name,
    reporter,
    sha256: pinned,
    signal: req.signal,
    ...req.http,
    onNotFound: origin.kind === 'server' ? (u) => notFoundError(origin.base, name, u, { signal: req.signal }) : undefined,
  };

  if (!settings.cacheDir) {
    // No cache (e.g. the action, which has its own): download into this build's temp folder.
    reporter.info(`Downloading image ${name} from ${url}...`);
    const r = await downloadImage({ ...base, dest: path.join(settings.tempDir, 'image.qcow2') });
    return { path: r.path!, format: 'qcow2', name, source: 'download', sha256: r.sha256 };
  }

  const cache = new ImageCache(settings.cacheDir);
  const maxAge = settings.image.maxAgeMs;
  const usable = (e: CacheEntry | undefined): e is CacheEntry =>
    !!e && (pinned ? e.meta.sha256 === pinned : Date.now() - Date.parse(e.meta.checkedAt) < maxAge);
  const hit = (e: CacheEntry): ResolvedImage => {
    reporter.info(`Using cached image ${name} (fetched ${e.meta.fetchedAt} from ${e.meta.url}).`);
    return { path: e.path, format: 'qcow2', name, source: 'cache', sha256: e.meta.sha256 };
  };

  // The common case needs no lock: entries only ever appear whole.
  const first = await cache.read(origin, name);
  if (usable(first)) return hit(first);

  return cache.locked(
    origin,
    name,
    reporter,
    async () => {
      // Another process may have fetched it while we waited for the lock.
      const entry = await cache.read(origin, name);
      if (usable(entry)) return hit(entry);
      const dest = cache.imagePath(origin, name);

      if (entry && !pinned) {
        const kept = await revalidate(cache, entry, origin, name, base, dest, reporter, req.signal);
        if (kept) return kept;
      }

      reporter.info(`Downloading image ${name} from ${url}...`);
      const r = await downloadImage({ ...base, dest });
      const modTime =
        !r.etag && !r.lastModified && origin.kind === 'server'
          ? await serverModTime(origin.base, name, { signal: req.signal }).catch(() => undefined)
          : undefined;
      await cache.writeMeta({ ...freshMeta(name, origin, r), modTime });
      return { path: dest, format: 'qcow2', name, source: 'download', sha256: r.sha256 };
    },
    req.signal,
  );
}

/**
 * Asks the server whether the cached copy is still current. Returns the
 * image to use (the cached copy, or a new one fetched by the same request),
 * or undefined when a plain download is needed.
 */
async function revalidate(
  cache: ImageCache,
  entry: CacheEntry,
  origin: ImageOrigin,
  name: string,
  base: Omit<DownloadOptions, 'dest'>,
  dest: string,
  reporter: Reporter,
  signal?: AbortSignal,
): Promise<ResolvedImage | undefined> {
  const m = entry.meta;
  const cached = (e: CacheEntry, why: string): ResolvedImage => {
    reporter.info(`Using cached image ${name} (${why}).`);
    return { path: e.path, format: 'qcow2', name, source: 'cache', sha256: e.meta.sha256 };
  };
  try {
    if (m.etag || m.lastModified) {
      reporter.info(`Checking cached image ${name} with ${m.url}...`);
      // Revalidation should not hold a build up for long when the server is away.
      const r = await downloadImage({
        ...base,
        dest,
        conditional: { etag: m.etag, lastModified: m.lastModified },
        attempts: Math.min(base.attempts ?? 2, 2),
      });
      if (r.notModified) return cached(await cache.touch(entry), 'unchanged on the server');
      await cache.writeMeta({ ...m, ...freshMeta(m.name, m.origin, r), modTime: undefined });
      reporter.info(`Downloaded a newer ${name}.`);
      return { path: dest, format: 'qcow2', name, source: 'download', sha256: r.sha256 };
    }
    if (m.modTime && origin.kind === 'server') {
      const now = await serverModTime(origin.base, name, { signal });
      if (now === m.modTime) return cached(await cache.touch(entry), 'unchanged on the server');
      return undefined;
    }
    return undefined;
  } catch (err) {
    if (signal?.aborted) throw err;
    // Keep working offline (or when the server now sends a bad file): the cached copy was verified when stored.
    const why =
      err instanceof DownloadError || err instanceof ImageNotFoundError || err instanceof ImageRejectedError
        ? err.message
        : `listing failed: ${(err as Error).message}`;
    reporter.warn(`could not revalidate cached image ${name} (${why.replace(/\.$/, '')}); using the copy fetched ${m.fetchedAt}.`);
    return { path: entry.path, format: 'qcow2', name, source: 'cache', sha256: m.sha256 };
  }
}
