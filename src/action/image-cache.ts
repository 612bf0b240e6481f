// The action's image caches: @actions/tool-cache within a job, @actions/cache
// across workflow runs, both keyed by the image name and its revision. The key
// formats are in docs/action.md ("Image caches").
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { sha256File } from '../util/sha256.js';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as cache from '@actions/cache';
import { missingFor } from '../host/requirements.js';
import * as core from '@actions/core';
import * as tc from '@actions/tool-cache';
import type { DriverSettings } from '../config/settings.js';
import type { Manifest } from '../manifest/types.js';
import type { BuildReport, Reporter } from '../core/reporter.js';
import { formatDuration } from '../util/duration.js';
import { downloadUrl, originFor } from '../images/fetch/through-cache.js';
import { serverModTime } from '../images/fetch/server.js';
import { diskPath } from '../images/local.js';
import { catalogueFirst, resolveImage } from '../images/resolve.js';
import { buildableSuite } from '../images/builder/index.js';
import { VERSION } from '../core/version.js';
import type { ActionInputs } from './inputs.js';
import { message } from '../core/errors.js';

export const IMAGE_ARCH = 'x86_64';
const FILE = 'image.qcow2';

export interface ImageRevision {
  kind: 'sha256' | 'rev';
  /** The full digest, or the server's revision text. */
  value: string;
}

export function imageSlug(name: string): string {
  return name.replace(/[^A-Za-z0-9.-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function toolName(name: string): string {
  return `djinn-image-${imageSlug(name)}`;
}

function revisionId(rev: ImageRevision): string {
  const hex =
    rev.kind === 'sha256' ? rev.value.toLowerCase().replace(/^sha256:/, '') : createHash('sha256').update(rev.value).digest('hex');
  return `${rev.kind}-${hex.slice(0, 16)}`;
}

export function toolVersion(rev: ImageRevision): string {
  return `1.0.0-${revisionId(rev)}`;
}

export function cacheKey(name: string, rev: ImageRevision): string {
  return `djinn-image-v1-${imageSlug(name)}-${revisionId(rev)}`;
}

// @actions/cache keys its entries by the path strings too: a `~` path is the
// same string on every runner, whatever RUNNER_TEMP or the home folder is.
function stagingPattern(name: string): string {
  return `~/.cache/djinn/action-image-cache/${imageSlug(name)}`;
}

function stagingDir(name: string): string {
  return path.join(os.homedir(), stagingPattern(name).slice(2));
}

export type CacheHit = {
  path: string;
  from: 'tool-cache' | 'cache';
  ms: number;
  /** How long fetching it took on the run that saved it. */ fetchMs?: number;
};
const META = 'fetch.json';

async function readFetchMs(dir: string): Promise<number | undefined> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, META), 'utf8')) as { fetchMs?: unknown };
    return typeof m.fetchMs === 'number' ? m.fetchMs : undefined;
  } catch {
    return undefined;
  }
}

/** Looks in the job's tool cache, then the repository's cache; the image file on a hit. */
export async function restoreImage(name: string, rev: ImageRevision): Promise<CacheHit | undefined> {
  const started = Date.now();
  const found = tc.find(toolName(name), toolVersion(rev), IMAGE_ARCH);
  if (found && existsSync(path.join(found, FILE)))
    return { path: path.join(found, FILE), from: 'tool-cache', ms: Date.now() - started, fetchMs: await readFetchMs(found) };
  if (!cache.isFeatureAvailable()) return undefined;
  const dir = stagingDir(name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    const key = await cache.restoreCache([stagingPattern(name)], cacheKey(name, rev));
    const file = path.join(dir, FILE);
    if (!key || !existsSync(file)) return undefined;
    if (rev.kind === 'sha256') {
      const got = await sha256File(file);
      if (got !== rev.value.toLowerCase().replace(/^sha256:/, '')) {
        core.warning(`the cached image ${name} has SHA-256 ${got}, not the pinned ${rev.value}: ignoring the cache entry.`);
        return undefined;
      }
    }
    const fetchMs = await readFetchMs(dir);
    const cached = await tc.cacheDir(dir, toolName(name), toolVersion(rev), IMAGE_ARCH);
    return { path: path.join(cached, FILE), from: 'cache', ms: Date.now() - started, fetchMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Puts an image into the job's tool cache and, when `acrossRuns`, the repository's cache. */
export async function saveImage(
  name: string,
  rev: ImageRevision,
  file: string,
  acrossRuns = true,
  fetchMs?: number,
): Promise<{ toolPath: string; cacheId?: number }> {
  const dir = stagingDir(name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    await copyFile(file, path.join(dir, FILE));
    if (fetchMs !== undefined) await writeFile(path.join(dir, META), JSON.stringify({ fetchMs }));
    const toolPath = path.join(await tc.cacheDir(dir, toolName(name), toolVersion(rev), IMAGE_ARCH), FILE);
    if (!acrossRuns || !cache.isFeatureAvailable()) return { toolPath };
    const cacheId = await cache.saveCache([stagingPattern(name)], cacheKey(name, rev));
    return { toolPath, cacheId };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The server's revision of an image, from a HEAD request (ETag, else Last-Modified); undefined when unknown (then the listing's mod_time). */
export async function serverRevision(url: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const res = await fetch(url, {
      method: 'HEAD',
      redirect: 'follow',
      signal: AbortSignal.any([AbortSignal.timeout(15_000), ...(signal ? [signal] : [])]),
    });
    if (!res.ok) return undefined;
    const rev = res.headers.get('etag') ?? res.headers.get('last-modified');
    return rev ? `${url} ${rev}` : undefined;
  } catch {
    return undefined;
  }
}

/** What identifies an image of our builder's: its version, and the month (so that package updates arrive). */
export function builtRevision(name: string, now = new Date()): string {
  return `built ${name} (flavor fast) by djinn-vm ${VERSION} in ${now.toISOString().slice(0, 7)}`;
}

/**
 * The image's revision: the pinned digest, else the server's (fromServer: the
 * image will be downloaded), else, for an image our builder makes, the builder's.
 */
export async function imageRevision(
  name: string,
  settings: DriverSettings,
  signal?: AbortSignal,
): Promise<{ rev?: ImageRevision; fromServer: boolean }> {
  if (settings.image.sha256) return { rev: { kind: 'sha256', value: settings.image.sha256 }, fromServer: false };
  // The engine's own notion of where the image comes from and its revision signals.
  const origin = originFor(settings);
  const url = downloadUrl(origin, name);
  let text = await serverRevision(url, signal);
  if (!text && origin.kind === 'server') {
    const modTime = await serverModTime(origin.base, name, { signal }).catch(() => undefined);
    if (modTime) text = `${url} mod_time ${modTime}`;
  }
  if (text) return { rev: { kind: 'rev', value: text }, fromServer: true };
  // No server to ask (none reachable, or it lacks the image): an image our builder makes is keyed by the builder.
  if (buildableSuite(name) && settings.image.build !== 'never')
    return { rev: { kind: 'rev', value: builtRevision(name) }, fromServer: false };
  return { fromServer: false };
}

/**
 * Whether the repository cache holds the image, without downloading it. Our
 * entries are always saved with zstd (the action installs it before any cache
 * call), and @actions/cache keys an entry by its compression, which it takes
 * from `zstd --version` on PATH; it has no parameter for it. So that the one
 * apt-get call can be decided before zstd is installed, the lookup (lookupOnly:
 * nothing is downloaded or decompressed) runs with a stand-in zstd on PATH that
 * only answers --version. With zstd installed, the real one answers.
 */
export async function inRepositoryCache(name: string, rev: ImageRevision, tempDir: string): Promise<boolean> {
  if (!cache.isFeatureAvailable()) return false;
  const savedPath = process.env.PATH;
  let shim: string | undefined;
  if (missingFor(['actions-cache']).programs.length) {
    shim = await mkdtemp(path.join(tempDir, 'zstd-version-'));
    await writeFile(path.join(shim, 'zstd'), '#!/bin/sh\necho v1.5.0\n', { mode: 0o755 });
    process.env.PATH = `${shim}${path.delimiter}${savedPath ?? ''}`;
  }
  try {
    return (await cache.restoreCache([stagingPattern(name)], cacheKey(name, rev), [], { lookupOnly: true })) !== undefined;
  } catch (err) {
    core.info(`image cache: looking up ${name} failed (${err instanceof Error ? err.message : String(err)}): counting it as not cached.`);
    return false;
  } finally {
    process.env.PATH = savedPath;
    if (shim) await rm(shim, { recursive: true, force: true });
  }
}

/**
 * Whether this build will reach our image builder, decided before anything is
 * installed: not when the image is a file, in the disks folder, in the job's
 * tool cache or the repository cache, or on a server that answers for it.
 */
export async function willBuild(
  manifest: Manifest,
  settings: DriverSettings,
  inputs: ActionInputs,
  signal?: AbortSignal,
): Promise<{ build: boolean; cloud: boolean; why: string; rev?: ImageRevision }> {
  const name = imageName(manifest, settings);
  // A catalogue image boots with a cloud-init seed (its tools go into the same apt-get call).
  const cloud = !!name && catalogueFirst(name, settings);
  const no = (why: string, rev?: ImageRevision) => ({ build: false, cloud, why, rev });
  if (!name || settings.image.file) return no('the image is a file');
  if (settings.qemu.disks && existsSync(diskPath(path.resolve(settings.qemu.disks), name))) return no(`${name} is in the disks folder`);
  if (!buildableSuite(name) || settings.image.build === 'never' || cloud) return no(`${name} is not built here`);
  const { rev, fromServer } = await imageRevision(name, settings, signal);
  if (fromServer) return no(`the image server has ${name}`, rev);
  if (inputs.cache && rev) {
    if (tc.find(toolName(name), toolVersion(rev), IMAGE_ARCH)) return no(`${name} is in the tool cache`, rev);
    if (await inRepositoryCache(name, rev, settings.tempDir)) return no(`${name} is in the repository cache`, rev);
  }
  return { build: true, cloud, why: `no server has ${name} and no cache holds it: the builder makes it here`, rev };
}

/** The image the manifest (or the `image` input) names. */
export function imageName(manifest: Manifest, settings: DriverSettings): string | undefined {
  return settings.image.name ?? manifest.driver.options.image;
}

/**
 * Before a qemu build: when the image comes from a download (not a file or
 * the disks folder) and `cache` is on, use a cached copy, or remember to save
 * the one the build fetches.
 */
export async function prepareImage(
  manifest: Manifest,
  settings: DriverSettings,
  inputs: ActionInputs,
  reporter: Reporter,
  signal?: AbortSignal,
  /** The revision hostNeeds found (its server request is not made twice). */
  known?: { rev?: ImageRevision },
): Promise<{ name: string; rev?: ImageRevision; note?: string } | undefined> {
  const name = imageName(manifest, settings);
  if (!name) return undefined;
  if (!inputs.cache || settings.image.file) return { name };
  if (settings.qemu.disks && existsSync(diskPath(path.resolve(settings.qemu.disks), name))) return { name };
  const rev = known ? known.rev : (await imageRevision(name, settings, signal)).rev;
  if (!rev) {
    reporter.info(`Image cache: the revision of ${name} is unknown (no pinned image-sha256, no answer from the server): not caching it.`);
    return { name };
  }
  const hit = await restoreImage(name, rev).catch((err: unknown) => {
    core.warning(`image cache: restoring ${name} failed: ${message(err)}`);
    return undefined;
  });
  if (hit) {
    const vs = hit.fetchMs !== undefined ? ` (fetching it took ${formatDuration(hit.fetchMs)} on the run that saved it)` : '';
    reporter.info(
      `Image ${name} restored from the ${hit.from === 'cache' ? 'repository cache' : 'tool cache'} in ${formatDuration(hit.ms)}${vs}.`,
    );
    // A catalogue image needs its cloud-init seed also when it comes back as a file.
    settings.image.cloudInit = catalogueFirst(name, settings);
    settings.image.file = hit.path;
    return {
      name,
      rev,
      note: `restored from the ${hit.from === 'cache' ? 'repository cache' : 'tool cache'} in ${formatDuration(hit.ms)}`,
    };
  }
  // A miss: fetch it now (the engine's resolver: download, or our builder) to time it and know the file.
  const started = Date.now();
  const resolved = await resolveImage({ name, settings, reporter, signal });
  const fetchMs = Date.now() - started;
  reporter.info(`Image ${name} came from ${resolved.source} in ${formatDuration(fetchMs)}.`);
  settings.image.file = resolved.path;
  settings.image.format = resolved.format;
  settings.image.cloudInit = resolved.cloudInit;
  if (resolved.source === 'download' || resolved.source === 'cache' || resolved.source === 'build')
    pending.set(settings, { name, rev, file: resolved.path, fetchMs });
  return {
    name,
    rev,
    note: `${resolved.source === 'build' ? 'built' : resolved.source === 'download' ? 'downloaded' : `from ${resolved.source}`} in ${formatDuration(fetchMs)}`,
  };
}

const pending = new WeakMap<DriverSettings, { name: string; rev: ImageRevision; file: string; fetchMs: number }>();

/** After a build whose machine booted (or with a pinned digest): save the image fetched before it. */
export async function afterBuild(settings: DriverSettings, report: BuildReport, reporter: Reporter): Promise<void> {
  const p = pending.get(settings);
  if (!p || !existsSync(p.file)) return;
  if (p.rev.kind !== 'sha256' && !report.jobs.some((j) => j.status !== 'skipped' && j.status !== 'queued')) return;
  try {
    const started = Date.now();
    const saved = await saveImage(p.name, p.rev, p.file, true, p.fetchMs);
    reporter.info(
      `Image ${p.name} saved to the ${saved.cacheId !== undefined ? 'repository cache' : 'tool cache'} in ${formatDuration(Date.now() - started)}.`,
    );
  } catch (err) {
    core.warning(`image cache: saving ${p.name} failed: ${message(err)}`);
  }
}
