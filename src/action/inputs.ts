// The action's inputs, read once and checked. Driver inputs carry the CLI flags'
// names and resolve through src/config/settings.ts, so both front ends validate
// them the same way.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
import type { EnvVar } from '../core/job.js';
import { emptyConf, type DriverSettings, settingsFromFlags, type FlagValues } from '../config/settings.js';
import { UsageError } from '../core/errors.js';
import { parseEnvLines } from '../runner/prepare.js';
import { parseDuration } from '../util/duration.js';
import { resolveStageCache, type StageCacheSettings } from '../config/stage-cache.js';

export type WorkspaceMode = 'auto' | 'clone' | 'off';

export interface ActionInputs {
  manifest: string;
  stage?: string;
  env: EnvVar[];
  workspace: WorkspaceMode;
  artifactsDir: string;
  uploadArtifacts: boolean;
  artifactName: string;
  cache: boolean;
  /** Leave the machine running for the job's later steps. */
  keep: boolean;
  timeoutMs?: number;
  jobTimeoutMs?: number;
  /** Inputs that become DriverSettings, by their CLI flag names. */
  driverFlags: FlagValues;
  /** cache-stages, cache-key, cache-max-age. */
  stageCache: StageCacheSettings;
}

/** Driver inputs that share their name and meaning with a CLI flag. */
const DRIVER_INPUTS = [
  'image',
  'image-file',
  'image-format',
  'image-url',
  'image-sha256',
  'image-server',
  'image-build',
  'image-source',
  'image-mirror',
  'image-checksum',
  'disks',
  'cpus',
  'memory',
  'kvm',
  'tcg-threads',
  'boot-timeout',
  'boot-stall',
  'boot-retries',
];

function opt(name: string): string | undefined {
  const v = core.getInput(name).trim();
  return v === '' ? undefined : v;
}

function bool(name: string, dflt: boolean): boolean {
  const v = opt(name);
  if (v === undefined) return dflt;
  if (/^(true|yes|on|1)$/i.test(v)) return true;
  if (/^(false|no|off|0)$/i.test(v)) return false;
  throw new UsageError(`expected true or false, found "${v}".`, {}, `input ${name}`);
}

function duration(name: string): number | undefined {
  const v = opt(name);
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw new UsageError(`invalid duration "${v}": write e.g. 90s, 30m or 1h30m.`, {}, `input ${name}`);
  return ms;
}

export function readInputs(): ActionInputs {
  const envLines = core.getInput('env').split('\n');
  const env = parseEnvLines(envLines, 'input env');
  // Mask before anything can print them.
  for (const e of env) if (e.value.trim().length >= 3) core.setSecret(e.value);

  const workspace = (opt('workspace') ?? 'auto') as WorkspaceMode;
  if (!['auto', 'clone', 'off'].includes(workspace))
    throw new UsageError(`expected auto, clone or off, found "${workspace}".`, {}, 'input workspace');

  const flags: FlagValues = {};
  for (const name of DRIVER_INPUTS) flags[name] = opt(name);
  const kvm = opt('kvm');
  if (kvm && /^(true|false)$/i.test(kvm)) flags.kvm = /^true$/i.test(kvm) ? 'on' : 'off';
  const warm = opt('warm-start');
  if (warm) flags.warm = warm;

  const runnerTemp = process.env.RUNNER_TEMP || os.tmpdir();
  return {
    // Empty only when the workflow says so (the runner fills in action.yml's default): keep: true then boots the image only.
    manifest: process.env.INPUT_MANIFEST === undefined ? '.djinn.yml' : core.getInput('manifest').trim(),
    stage: opt('stage'),
    env,
    workspace,
    artifactsDir: path.resolve(workspaceDir(), opt('artifacts-dir') ?? path.join(runnerTemp, 'djinn-artifacts')),
    uploadArtifacts: bool('upload-artifacts', true),
    artifactName: opt('artifact-name') ?? defaultArtifactName(),
    cache: bool('cache', true),
    keep: bool('keep', false),
    timeoutMs: duration('timeout'),
    jobTimeoutMs: duration('job-timeout'),
    driverFlags: flags,
    stageCache: resolveStageCache(
      { stages: [core.getInput('cache-stages')], key: core.getInput('cache-key'), maxAge: opt('cache-max-age') },
      { stages: 'input cache-stages', maxAge: 'input cache-max-age' },
    ),
  };
}

/** DriverSettings for one build; errors name the input, not the CLI flag. */
export function driverSettings(inputs: ActionInputs, tempDir: string): DriverSettings {
  try {
    return { ...settingsFromFlags(inputs.driverFlags, emptyConf(), tempDir) };
  } catch (err) {
    if (err instanceof UsageError && err.field?.startsWith('-'))
      throw new UsageError(err.message, err.position, `input ${err.field.slice(1)}`);
    throw err;
  }
}

export function workspaceDir(): string {
  return process.env.GITHUB_WORKSPACE || process.cwd();
}

/**
 * `djinn-<job>[-<manifest>][-<image>]-<hash of every input>`: matrix legs of one
 * job share GITHUB_JOB but pass different inputs, and artifact names must be
 * unique within a run. A re-run attempt gets `-attempt<N>`.
 */
export function defaultArtifactName(env: NodeJS.ProcessEnv = process.env): string {
  const inputs = Object.keys(env)
    .filter((k) => k.startsWith('INPUT_') && k !== 'INPUT_ENV')
    .sort()
    .map((k) => `${k}=${env[k]}`)
    .join('\n');
  const hash = createHash('sha256').update(inputs).digest('hex').slice(0, 8);
  const manifest = path
    .basename(env['INPUT_MANIFEST'] || '')
    .replace(/\.ya?ml$/, '')
    .replace(/^\.djinn$/, '');
  const parts = ['djinn', env.GITHUB_JOB || 'build', manifest, env['INPUT_IMAGE'] ?? '', hash];
  const attempt = Number(env.GITHUB_RUN_ATTEMPT || '1');
  if (attempt > 1) parts.push(`attempt${attempt}`);
  // Characters upload-artifact refuses: " : < > | * ? \r \n \\ /
  return parts
    .filter(Boolean)
    .join('-')
    .replace(/["<>|*?\r\n\\/:]+/g, '_')
    .slice(0, 200);
}
