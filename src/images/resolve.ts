// Finds the image file a qemu build boots. Sources, in order: an explicit
// file, the disks folder (Djinn's layout), our cache, a download, our builder,
// the catalogue of official cloud images (before the builder for names it
// cannot build; see docs/catalogue.md for the order of debian/* names).
//
// Each source either returns an image, returns undefined ("not mine, ask the
// next one") or throws a user-facing DriverError. To add a source, add a
// function to SOURCES at its place in the order.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DriverError } from '../core/errors.js';
import type { DriverSettings } from '../config/settings.js';
import type { Reporter } from '../core/reporter.js';
import { BuildError, buildImage, buildableSuite } from './builder/index.js';
import { diskPath, listDiskImages } from './local.js';
import { DownloadError, ImageNotFoundError } from './fetch/errors.js';
import { cachedOrDownloaded } from './fetch/through-cache.js';
import { catalogueRef, fromCatalogue } from './catalogue/source.js';
import type { ResolvedImage } from './resolved.js';

export interface ResolveRequest {
  name: string;
  settings: DriverSettings;
  reporter: Reporter;
  signal?: AbortSignal;
}

type Source = (req: ResolveRequest) => Promise<ResolvedImage | undefined>;

/** 1. -image-file: exactly that file, nothing else is tried. */
const fromFile: Source = async ({ name, settings }) => {
  if (!settings.image.file) return undefined;
  const file = path.resolve(settings.image.file);
  if (!existsSync(file)) throw new DriverError(`image file ${file} (-image-file) does not exist.`);
  return { path: file, format: settings.image.format ?? 'qcow2', name, source: 'file', cloudInit: settings.image.cloudInit };
};

/** 2. The disks folder: <disks>/qemu/x86_64/<name>, as Djinn looks. */
const fromDisks: Source = async ({ name, settings }) => {
  if (!settings.qemu.disks) return undefined;
  const file = diskPath(path.resolve(settings.qemu.disks), name);
  if (!existsSync(file)) return undefined;
  return { path: file, format: settings.image.format ?? 'qcow2', name, source: 'disks' };
};

/**
 * 3 and 4. Our cache, else a download (-image-url, or the image server). With
 * -image-build auto, a download that cannot happen (network, server errors)
 * or a server without the image hands over to the builder when it can build
 * the name; -image-build always skips straight to the builder.
 */
const fromCacheOrDownload: Source = async (req) => {
  const { name, settings, reporter } = req;
  if (settings.image.build === 'always') return undefined;
  const only = settings.image.source ?? 'auto';
  if (!settings.image.url && (only === 'catalogue' || only === 'build')) return undefined;
  try {
    return await cachedOrDownloaded(req);
  } catch (err) {
    const impossible = err instanceof ImageNotFoundError || (err instanceof DownloadError && err.retryable);
    if (impossible && settings.image.build !== 'never' && buildableSuite(name) && builtImagesDir(settings.cacheDir)) {
      reporter.info(`${err.message} Building ${name} with our builder instead (-image-build auto).`);
      return undefined;
    }
    if (impossible && !settings.image.url && only === 'auto' && catalogueRef(name, settings)) {
      reporter.info(`${err.message} Trying the catalogue of official cloud images.`);
      serverFailure.set(req, err as Error);
      return undefined;
    }
    throw err;
  }
};

/** Whether a name that no local source has would come from the catalogue (not the image server's URL, not our builder). */
export function catalogueFirst(name: string, settings: DriverSettings): boolean {
  const only = settings.image.source ?? 'auto';
  if (settings.image.file || settings.image.url || only === 'server' || only === 'build' || settings.image.build === 'always') return false;
  if (only === 'auto' && buildableSuite(name) && settings.image.build !== 'never' && builtImagesDir(settings.cacheDir)) return false;
  return !!catalogueRef(name, settings);
}

/** The Djinn server's failure, kept so that a catalogue failure can say both. */
const serverFailure = new WeakMap<ResolveRequest, Error>();

/**
 * The catalogue: for names our builder cannot make, after the Djinn server; for
 * debian/* names only when our builder is not to be used (-image-build never,
 * -image-source catalogue, no cache folder to keep a build in).
 */
const fromCatalogueSource: Source = async (req) => {
  const { name, settings } = req;
  if (!catalogueFirst(name, settings)) return undefined;
  try {
    return await fromCatalogue(req);
  } catch (err) {
    const before = serverFailure.get(req);
    if (before && err instanceof DownloadError && err.retryable) {
      before.message += ` The catalogue could not help either: ${err.message}`;
      throw before;
    }
    throw err;
  }
};

/** Where images made by our builder are kept: a disks layout inside the cache folder. */
export function builtImagesDir(cacheDir: string | undefined): string | undefined {
  return cacheDir ? path.join(cacheDir, 'built') : undefined;
}

/** 5. Our builder, for debian/<suite> names; the result stays in the cache folder for the next run. */
const fromBuilder: Source = async ({ name, settings, reporter, signal }) => {
  const suite = buildableSuite(name);
  const dir = builtImagesDir(settings.cacheDir);
  if (!suite || !dir || settings.image.build === 'never' || settings.image.source === 'server' || settings.image.source === 'catalogue')
    return undefined;
  const file = diskPath(dir, name);
  if (existsSync(file)) return { path: file, format: 'qcow2', name, source: 'build' };
  reporter.info(`Building image ${name} (flavor fast) with mmdebstrap; this takes about a minute...`);
  try {
    await buildImage({ suite, flavor: 'fast', output: file, signal }, (line) => reporter.info(`  ${line}`));
  } catch (err) {
    if (err instanceof BuildError) throw new DriverError(`cannot build image ${name}: ${err.message}`);
    throw err;
  }
  return { path: file, format: 'qcow2', name, source: 'build' };
};

/** The order sources are asked in. */
const SOURCES: Source[] = [fromFile, fromDisks, fromCacheOrDownload, fromBuilder, fromCatalogueSource];

export async function resolveImage(req: ResolveRequest): Promise<ResolvedImage> {
  for (const source of SOURCES) {
    let found: ResolvedImage | undefined;
    try {
      found = await source(req);
    } catch (err) {
      // A later source failed (e.g. a download): still say where the disks folder was looked at.
      if (err instanceof Error && req.settings.qemu.disks && !req.settings.image.file && source !== fromDisks)
        err.message += ` ${(await disksHint(req)).join(' ')}`;
      throw err;
    }
    if (found) return found;
  }
  throw await notFound(req);
}

/** Where the image was looked for in the disks folder, and what is there. */
async function disksHint({ name, settings }: ResolveRequest): Promise<string[]> {
  if (!settings.qemu.disks) return ['No disks folder is set (-disks or driver.conf: driver qemu { disks "DIR" }).'];
  const disks = path.resolve(settings.qemu.disks);
  const present = await listDiskImages(disks);
  return [
    `Looked for ${diskPath(disks, name)}.`,
    present.length
      ? `Images present under ${disks}: ${present.join(', ')}.`
      : `There are no images under ${path.join(disks, 'qemu', 'x86_64')}.`,
  ];
}

async function notFound(req: ResolveRequest): Promise<DriverError> {
  const { name, settings } = req;
  const lines = [`couldn't find image ${name}.`, ...(await disksHint(req))];
  if (!buildableSuite(name)) lines.push('Only debian/<suite> images can be built here (djinn image build).');
  else if (settings.image.build === 'never') lines.push('Building it was not allowed (-image-build never).');
  return new DriverError(lines.join(' '));
}
