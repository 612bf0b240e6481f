// Stage states across workflow runs: the qemu driver keeps them under
// <cacheDir>/stages and checks every one it loads (base machine, stages' key,
// digests), so the action only carries that folder with @actions/cache:
// restored before the first qemu build, saved in the post step when a build
// saved a new state. A state is big and its contents change with each save, so
// each saving run writes a new cache entry, restored by the prefix.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import type { DriverSettings } from '../config/settings.js';
import type { BuildReport, Reporter } from '../core/reporter.js';
import { formatDuration } from '../util/duration.js';
import type { ImageRevision } from './image-cache.js';
import { message } from '../core/errors.js';
import { STATE } from './state.js';
import { homePattern } from './warm-cache.js';
import { stageStateRoot } from '../drivers/qemu/warm/store.js';

/**
 * `djinn-stages-v1-<leg>-`: the leg is a hash of what tells one matrix leg from
 * another (job, runner OS and architecture, every input but env, image
 * revision, QEMU, accelerator), so that no leg restores another's states.
 */
export function stageCachePrefix(
  image: string,
  rev: ImageRevision | undefined,
  accelerator: string,
  qemu: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const inputs = Object.keys(env)
    .filter((k) => k.startsWith('INPUT_') && k !== 'INPUT_ENV')
    .sort()
    .map((k) => `${k}=${env[k]}`);
  const leg = [
    env.GITHUB_JOB ?? '',
    env.RUNNER_OS ?? process.platform,
    env.RUNNER_ARCH ?? process.arch,
    env.ImageOS ?? '',
    image,
    `${rev?.kind ?? ''}:${rev?.value ?? ''}`,
    qemu,
    accelerator,
    ...inputs,
  ].join('\n');
  return `djinn-stages-v1-${createHash('sha256').update(leg).digest('hex').slice(0, 20)}-`;
}

let restored: { pattern: string; prefix: string } | undefined;

/** Before a qemu build with stage caching on: bring back the states an earlier run of this leg saved (once per run). */
export async function restoreStageStates(settings: DriverSettings, prefix: string, reporter: Reporter): Promise<void> {
  if (!settings.cacheDir || settings.qemu.warm === 'off' || restored || !cache.isFeatureAvailable()) return;
  const pattern = homePattern(stageStateRoot(settings.cacheDir));
  restored = { pattern, prefix };
  try {
    const started = Date.now();
    const hit = await cache.restoreCache([pattern], prefix, [prefix]);
    if (hit) reporter.info(`Stage states restored from the repository cache (${hit}) in ${formatDuration(Date.now() - started)}.`);
  } catch (err) {
    core.warning(`stage cache: restoring failed: ${message(err)}`);
  }
}

/** After a build that saved a stage state: the post step saves the folder under a new key. */
export function scheduleStageSave(settings: DriverSettings, report: BuildReport): void {
  if (!restored || report.facts.stageSaved === undefined) return;
  if (!existsSync(stageStateRoot(settings.cacheDir!))) return;
  const run = `${process.env.GITHUB_RUN_ID ?? Date.now()}-${process.env.GITHUB_RUN_ATTEMPT ?? '1'}`;
  const key = `${restored.prefix}${run}-${randomBytes(3).toString('hex')}`;
  core.saveState(STATE.stageCache, JSON.stringify({ pattern: restored.pattern, key }));
}

/** The post step's part: upload the stage states main saved. Never throws. */
export async function saveStageStates(): Promise<void> {
  const raw = core.getState(STATE.stageCache);
  if (!raw) return;
  try {
    const { pattern, key } = JSON.parse(raw) as { pattern: string; key: string };
    const started = Date.now();
    await cache.saveCache([pattern], key);
    core.info(`Stage states saved to the repository cache as ${key} in ${formatDuration(Date.now() - started)}.`);
  } catch (err) {
    core.warning(`stage cache: saving failed: ${message(err)}`);
  }
}
