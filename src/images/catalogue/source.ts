// The catalogue as an image source: a distribution's official cloud image,
// verified against the digest its checksum file lists (checked while the
// image downloads), cached like every download. A pinned -image-sha256 wins;
// without one, an image whose checksum file cannot be read or does not list it
// is not booted unless checking is turned off (-image-checksum off).
import path from 'node:path';
import { DriverError, UsageError } from '../../core/errors.js';
import type { ResolvedImage } from '../resolved.js';
import { freshMeta, ImageCache, type CacheEntry, type ImageOrigin } from '../cache/store.js';
import { downloadImage, normalizeSha256, type DownloadOptions } from '../fetch/download.js';
import { DownloadError, ImageRejectedError } from '../fetch/errors.js';
import { readSmallBody, request } from '../fetch/http.js';
import type { FetchRequest } from '../fetch/through-cache.js';
import { ChecksumFileError, digestFor, type ChecksumEntry } from './checksums.js';
import { CatalogueError, describe, findInCatalogue, locate, parseMirrors, type CatalogueRef, type LocatedImage } from './lookup.js';

/** Cache metadata for catalogue entries: the listed digest the copy was checked against. */
interface CatalogueMeta {
  listed?: ChecksumEntry & { url: string };
}

/** The catalogue entry of a name under these settings (mirrors applied), or undefined. */
export function catalogueRef(name: string, settings: FetchRequest['settings']): CatalogueRef | undefined {
  let mirrors: Record<string, string>;
  try {
    mirrors = parseMirrors(settings.image.mirrors);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^-image-mirror: /, ''), {}, '-image-mirror');
  }
  return findInCatalogue(name, mirrors);
}

async function fetchText(url: string, signal?: AbortSignal): Promise<string> {
  const { res } = await request(url, { idleTimeoutMs: 30_000, signal });
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  return readSmallBody(res);
}

/** Network failures (not HTTP answers) make the catalogue unreachable: the caller may build instead. */
function unreachable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return (
    ['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH'].includes(code ?? '') ||
    (err as Error)?.name === 'TimeoutError'
  );
}

function networkWords(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return `the host name could not be resolved (${e.code})`;
  if (e?.code === 'ECONNREFUSED') return 'the connection was refused';
  return e?.message ?? String(err);
}

export async function fromCatalogue(req: FetchRequest): Promise<ResolvedImage | undefined> {
  const { name, settings, reporter, signal } = req;
  const ref = catalogueRef(name, settings);
  if (!ref) return undefined;
  if (!ref.distro.bootable)
    throw new DriverError(`image ${name} is in the catalogue (${describe(ref).imageUrl}) but cannot be booted yet: ${ref.distro.note}.`);
  const pinned = settings.image.sha256 ? normalizeSha256(settings.image.sha256) : undefined;
  const checking = settings.image.checksum !== 'off';
  // Keyed by the entry's URL pattern, so that a fresh copy is found without asking the network.
  const origin: ImageOrigin = { kind: 'url', base: describe(ref).imageUrl };
  const cache = settings.cacheDir ? new ImageCache(settings.cacheDir) : undefined;
  const maxAge = settings.image.maxAgeMs;
  const result = (p: string, source: ResolvedImage['source'], sha256: string): ResolvedImage => ({
    path: p,
    format: 'qcow2',
    name,
    source,
    sha256,
    cloudInit: true,
  });

  const first = cache ? await cache.read(origin, name) : undefined;
  if (first && (pinned ? first.meta.sha256 === pinned : Date.now() - Date.parse(first.meta.checkedAt) < maxAge)) {
    reporter.info(`Using cached image ${name} (fetched ${first.meta.fetchedAt} from ${first.meta.url}).`);
    return result(first.path, 'cache', first.meta.sha256);
  }

  let located: LocatedImage;
  try {
    located = await locate(ref, (u) => fetchText(u, signal));
  } catch (err) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (first) return offline(first, reporter, name, (err as Error).message);
    if (err instanceof CatalogueError) throw new DownloadError(`${err.message}.`, describe(ref).imageUrl, true);
    throw new DownloadError(`cannot reach ${ref.base} for ${name}: ${networkWords(cause ?? err)}.`, describe(ref).imageUrl, true);
  }

  let listed: (ChecksumEntry & { url: string }) | undefined;
  if (!pinned) {
    try {
      const text = await fetchText(located.checksumUrl, signal);
      const c = ref.distro.checksum;
      listed = { ...digestFor(text, c.format, c.algorithm, located.file, located.checksumUrl, c.sidecar), url: located.checksumUrl };
    } catch (err) {
      if (first && unreachable(err)) return offline(first, reporter, name, networkWords(err));
      if (unreachable(err) && checking)
        throw new DownloadError(
          `cannot read the checksum file ${located.checksumUrl} for ${name}: ${networkWords(err)}.`,
          located.imageUrl,
          true,
        );
      const why =
        err instanceof ChecksumFileError ? err.message : `the checksum file ${located.checksumUrl} cannot be read (${networkWords(err)})`;
      if (checking)
        throw new ImageRejectedError(
          `not booting ${name}: ${why}. Pin the image's digest with -image-sha256, or turn checking off with -image-checksum off.`,
        );
      reporter.warn(`${why}; booting ${name} unchecked (-image-checksum off).`);
    }
  }

  const known = first && (first.meta as CatalogueMeta & CacheEntry['meta']).listed;
  if (first && listed && known && known.hex === listed.hex && known.algorithm === listed.algorithm) {
    reporter.info(`Using cached image ${name} (its checksum file lists the same digest).`);
    return result((await cache!.touch(first)).path, 'cache', first.meta.sha256);
  }

  const base: Omit<DownloadOptions, 'dest'> = {
    url: located.imageUrl,
    label: name,
    reporter,
    sha256: pinned,
    listed: listed && { algorithm: listed.algorithm, hex: listed.hex, source: listed.url },
    signal,
    ...req.http,
  };
  reporter.info(
    `Downloading image ${name} from ${located.imageUrl} ` +
      `(${listed ? `${listed.algorithm.toUpperCase()} from ${listed.url}` : pinned ? 'pinned SHA-256' : 'unchecked'})...`,
  );
  if (!cache) {
    const r = await downloadImage({ ...base, dest: path.join(settings.tempDir, 'image.qcow2') });
    return result(r.path!, 'download', r.sha256);
  }
  return cache.locked(
    origin,
    name,
    reporter,
    async () => {
      const dest = cache.imagePath(origin, name);
      const r = await downloadImage({ ...base, dest });
      const meta = { ...freshMeta(name, origin, r), listed };
      await cache.writeMeta(meta);
      return result(dest, 'download', r.sha256);
    },
    signal,
  );
}

function offline(entry: CacheEntry, reporter: FetchRequest['reporter'], name: string, why: string): ResolvedImage {
  reporter.warn(
    `could not check cached image ${name} with its distribution (${why.replace(/\.$/, '')}); using the copy fetched ${entry.meta.fetchedAt}.`,
  );
  return { path: entry.path, format: 'qcow2', name, source: 'cache', sha256: entry.meta.sha256, cloudInit: true };
}
