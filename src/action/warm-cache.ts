// Warm-start states across workflow runs: the qemu driver keeps
// saved running machines under <cacheDir>/warm and validates every state it
// finds (image digest, QEMU, machine, memory, CPUs, devices), so the action only
// has to carry that folder between runs with @actions/cache. The key is what
// the action knows before the boot (image revision, accelerator, CPUs, memory,
// QEMU version); a state that still does not match is refused by the driver,
// which boots cold and saves a fresh one.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import type { DriverSettings } from '../config/settings.js';
import { qemuVersion } from '../drivers/qemu/warm/key.js';
import { warmStateRoot } from '../drivers/qemu/warm/store.js';
import type { BuildReport, Reporter } from '../core/reporter.js';
import { formatDuration } from '../util/duration.js';
import type { ImageRevision } from './image-cache.js';
import { message } from '../core/errors.js';

/** The driver's own reading of the QEMU version; "unknown" when there is no QEMU to ask. */
export function installedQemu(): Promise<string> {
  return qemuVersion().catch(() => 'unknown');
}

/** The warm-start folder as the cache sees it (see homePattern). */
export function warmPattern(cacheDir: string): string {
  return homePattern(warmStateRoot(cacheDir));
}

/** A folder as a path string that is the same on every runner (`~/…` when under the home folder). */
export function homePattern(dir: string): string {
  const home = os.homedir();
  return dir.startsWith(home + path.sep) ? `~/${path.relative(home, dir)}` : dir;
}

export function warmKey(
  image: string,
  rev: ImageRevision | undefined,
  settings: DriverSettings,
  accelerator: string,
  qemu: string,
): { key: string; prefix: string } {
  const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
  // Multi-threaded TCG is another machine to the state key (its -accel differs): keep its states apart.
  const accel = accelerator === 'tcg' && settings.qemu.tcgThreads === 'multi' ? 'tcg-multi' : accelerator;
  const prefix = `djinn-warm-v1-${h(`${image}\n${rev?.kind ?? ''}:${rev?.value ?? ''}\n${qemu}`)}-${accel}-`;
  return { key: `${prefix}c${settings.qemu.cpus ?? 'd'}-m${settings.qemu.memoryMiB ?? 'd'}`, prefix };
}

const pending = new WeakMap<DriverSettings, { pattern: string; key: string }>();

/** Before a qemu build with warm starts on: bring back the states an earlier run saved. */
export async function restoreWarmStates(
  image: string,
  rev: ImageRevision | undefined,
  settings: DriverSettings,
  accelerator: string,
  reporter: Reporter,
): Promise<void> {
  if (!settings.cacheDir || settings.qemu.warm === 'off' || !cache.isFeatureAvailable()) return;
  const pattern = warmPattern(settings.cacheDir);
  const { key, prefix } = warmKey(image, rev, settings, accelerator, await installedQemu());
  pending.set(settings, { pattern, key });
  if (settings.qemu.warm === 'refresh') return;
  try {
    const started = Date.now();
    const hit = await cache.restoreCache([pattern], key, [prefix]);
    if (hit) reporter.info(`Warm-start states restored from the repository cache (${hit}) in ${formatDuration(Date.now() - started)}.`);
  } catch (err) {
    core.warning(`warm-start cache: restoring failed: ${message(err)}`);
  }
}

/** After the build: when the driver saved a fresh state, keep it for later runs. */
export async function saveWarmStates(settings: DriverSettings, report: BuildReport, reporter: Reporter): Promise<void> {
  const p = pending.get(settings);
  if (!p || report.facts.warmSaveSeconds === undefined) return;
  if (!existsSync(warmStateRoot(settings.cacheDir!))) return;
  try {
    const started = Date.now();
    await cache.saveCache([p.pattern], p.key);
    reporter.info(`Warm-start state saved to the repository cache in ${formatDuration(Date.now() - started)}.`);
  } catch (err) {
    core.warning(`warm-start cache: saving failed: ${message(err)}`);
  }
}
