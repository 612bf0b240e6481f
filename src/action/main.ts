// The action's main step: inputs → one build per manifest (each in its own
// machine) → artifacts upload, outputs and step summary. The engine does the work.
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
import { DriverError, message, UsageError } from '../core/errors.js';
import { makeDriver } from '../drivers/index.js';
import { parseManifestFile } from '../manifest/parse.js';
import { makePlan, type Plan } from '../manifest/plan.js';
import type { Manifest } from '../manifest/types.js';
import type { DriverSettings } from '../config/settings.js';
import { runBuild } from '../runner/runner.js';
import { worst, type Status } from '../core/status.js';
import { uploadArtifacts } from './artifacts.js';
import { ensureQemu, installMissing, prepareKvm } from './host.js';
import { onMissing } from '../host/requirements.js';
import { afterBuild, prepareImage, willBuild } from './image-cache.js';
import { driverSettings, readInputs, workspaceDir, type ActionInputs } from './inputs.js';
import { findManifests } from '../runner/prepare.js';
import { installedQemu, restoreWarmStates, saveWarmStates } from './warm-cache.js';
import { restoreStageStates, scheduleStageSave, stageCachePrefix } from './stage-cache.js';
import { ActionsReporter } from './reporter.js';
import { STATE } from './state.js';
import { bootSeconds, fact, writeSummary, type BuildResult, type UploadResult } from './summary.js';
import { copyWorkspace, takeOverOwnSources } from './workspace.js';
import { bootOnlyBuild, checkKeep, keepMachine, secretValues } from './keep.js';

/** Folder name for one manifest's artifacts when several run: `.djinn/debian.yml` → `debian`. */
export function manifestSlug(file: string): string {
  const base = file
    .replace(/\.ya?ml$/, '')
    .replace(/^\.djinn\//, '')
    .replace(/^\.djinn$/, 'djinn');
  return base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'manifest';
}

export async function runMain(): Promise<void> {
  const stop = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = sig;
    core.info(`${sig} received: stopping the machine...`);
    stop.abort('killed');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: BuildResult[] = [];
  try {
    await main(stop.signal, results, () => signalled);
  } catch (err) {
    if (err instanceof UsageError) {
      const p = err.position;
      core.error(
        err.field ? `${err.field}: ${err.message}` : err.message,
        p.file ? { file: p.file, startLine: p.line, startColumn: p.column } : undefined,
      );
      core.setFailed(err.format());
    } else if (err instanceof DriverError) {
      core.setFailed(err.message);
    } else {
      core.debug(err instanceof Error ? (err.stack ?? err.message) : String(err));
      core.setFailed(`internal error: ${message(err)}`);
    }
    core.setOutput('status', 'failed');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

type Build = { file: string; manifest: Manifest; plan: Plan };
type Probed = { accelerator: 'kvm' | 'tcg'; why?: string };

async function main(signal: AbortSignal, results: BuildResult[], signalled: () => NodeJS.Signals | undefined): Promise<void> {
  const inputs = readInputs();
  // Builder tools are installed only when a build reaches the builder (not for a downloaded or cached image).
  onMissing((missing) => installMissing(missing));
  const workspace = workspaceDir();
  const builds = await parseBuilds(inputs, workspace);
  const runDir = await startRun(inputs);

  const kvm: { probed?: Probed } = {};
  const bootFailed: string[] = [];
  for (const [i, b] of builds.entries()) {
    if (signal.aborted) break;
    const result = await runOneBuild({ inputs, build: b, index: i, count: builds.length, runDir, workspace, kvm, signal });
    results.push(result.result);
    if (result.bootFailed) bootFailed.push(result.tempDir);
  }
  if (bootFailed.length) core.saveState(STATE.bootFailed, JSON.stringify(bootFailed));

  const status = results.reduce<Status>((s, r) => worst(s, r.report?.status ?? 'failed'), 'passed');
  const final: Status = signalled() ? worst(status, 'killed') : status;
  // After a signal the runner may kill us at any moment: the post step uploads.
  const upload = inputs.uploadArtifacts && !signalled() ? await uploadStep(inputs) : undefined;
  publishOutputs(results, kvm.probed, final);
  await writeSummary(results, upload).catch((err: unknown) => core.warning(`cannot write the step summary: ${message(err)}`));
  core.saveState(STATE.finished, 'true');
  failUnlessPassed(results, final, builds.length, signalled() !== undefined);
}

/** Parses every manifest first: a mistake in the third fails before any machine boots. */
async function parseBuilds(inputs: ActionInputs, workspace: string): Promise<Build[]> {
  const files = inputs.manifest === '' ? [] : await findManifests(inputs.manifest, workspace);
  const builds = files.map((file) => {
    const manifest = parseManifestFile(path.resolve(workspace, file), { displayName: file });
    for (const w of manifest.warnings) core.warning(w.message, { file: w.file ?? file, startLine: w.line, startColumn: w.column });
    return { file, manifest, plan: makePlan(manifest, { stage: inputs.stage }) };
  });
  if (inputs.manifest === '') builds.push(bootOnlyBuild(inputs));
  checkKeep(inputs, builds);
  return builds;
}

/** The run's folders, and the state the post step needs to clean up after us. */
async function startRun(inputs: ActionInputs): Promise<string> {
  await mkdir(inputs.artifactsDir, { recursive: true });
  const runner = process.env.RUNNER_TEMP || os.tmpdir();
  await mkdir(runner, { recursive: true });
  const runDir = await mkdtemp(path.join(runner, 'djinn-'));
  core.saveState(STATE.runDir, runDir);
  core.saveState(STATE.artifactsDir, inputs.artifactsDir);
  core.saveState(STATE.artifactName, inputs.artifactName);
  if (inputs.uploadArtifacts) core.saveState(STATE.uploadPending, 'true');
  core.setOutput('artifacts-dir', inputs.artifactsDir);
  return runDir;
}

interface OneBuild {
  inputs: ActionInputs;
  build: Build;
  index: number;
  count: number;
  runDir: string;
  workspace: string;
  /** The KVM probe, made once for all builds. */
  kvm: { probed?: Probed };
  signal: AbortSignal;
}

/** One manifest in its own machine; usage and driver errors end this build only. */
async function runOneBuild(o: OneBuild): Promise<{ result: BuildResult; tempDir: string; bootFailed: boolean }> {
  const { inputs, build: b, signal, workspace } = o;
  const several = o.count > 1;
  const prefix = several ? `${b.file}: ` : '';
  const artifactsDir = several ? path.join(inputs.artifactsDir, manifestSlug(b.file)) : inputs.artifactsDir;
  await mkdir(artifactsDir, { recursive: true });
  const tempDir = path.join(o.runDir, `build-${o.index + 1}`);
  await mkdir(tempDir, { recursive: true });
  const result: BuildResult = { manifest: b.file, artifactsDir };
  const reporter = new ActionsReporter(prefix);
  if (several) core.info(`\n━━ ${b.file} (${o.index + 1} of ${o.count}) ━━`);
  try {
    const settings = driverSettings(inputs, tempDir);
    const image = b.manifest.driver.type === 'qemu' ? await prepareQemuBuild(o, settings, reporter) : undefined;
    const copies = inputs.workspace === 'clone' ? [] : takeOverOwnSources(b.plan);
    const copy = inputs.workspace === 'auto' ? copies : [];
    if (inputs.workspace === 'off' && copies.length)
      reporter.info(`workspace: off: not cloning ${copies.map((c) => c.source.url).join(', ')}.`);
    if (inputs.keep) settings.qemu.detached = true;
    const driver = makeDriver(b.manifest.driver, settings);
    const env = [...b.manifest.env.map((e) => ({ key: e.key, value: e.value })), ...inputs.env];
    const startedAt = Date.now();
    const report = await runBuild({
      plan: b.plan,
      driver,
      reporter,
      env,
      artifactsDir,
      objectsDir: workspace,
      timeoutMs: inputs.timeoutMs,
      jobTimeoutMs: inputs.jobTimeoutMs,
      signal,
      stageCache: inputs.stageCache,
      beforeJobs: copy.length ? (d) => copyWorkspace(d, copy, workspace, tempDir, reporter, signal) : undefined,
      keep: inputs.keep
        ? (d) => keepMachine(d, { runDir: o.runDir, env, masks: secretValues(inputs.env), startedAt }).then(() => {})
        : undefined,
    });
    report.facts = { driver: b.manifest.driver.type, ...report.facts, ...(image?.note ? { imageNote: image.note } : {}) };
    reporter.buildEnd(report);
    result.report = report;
    if (b.manifest.driver.type === 'qemu') {
      await afterBuild(settings, report, reporter);
      await saveWarmStates(settings, report, reporter);
      scheduleStageSave(settings, report);
    }
    const noJobRan = report.status !== 'passed' && report.jobs.every((j) => j.status === 'skipped' || j.status === 'queued');
    return { result, tempDir, bootFailed: noJobRan };
  } catch (err) {
    if (err instanceof UsageError) {
      reporter.error(err.format(), err.position);
      result.error = err.format();
    } else if (err instanceof DriverError) {
      reporter.error(err.message);
      result.error = err.message;
    } else throw err;
    return { result, tempDir, bootFailed: true };
  }
}

/** QEMU on the runner, KVM when it works, the image (from the caches when they have it) and warm-start states. */
async function prepareQemuBuild(o: OneBuild, settings: DriverSettings, reporter: ActionsReporter) {
  // Everything this build needs in one apt-get call: the builder's tools only when no server or cache has the image.
  const source = await willBuild(o.build.manifest, settings, o.inputs, o.signal);
  await ensureQemu([...(source.build ? (['image-build'] as const) : []), ...(source.cloud ? (['cloud-seed'] as const) : [])], source.why);
  if (settings.qemu.kvm !== 'off' && !o.kvm.probed) {
    o.kvm.probed = await prepareKvm();
    if (o.kvm.probed.why)
      core.warning(
        `KVM is not available: ${o.kvm.probed.why}. The machine runs under software emulation (TCG), which is several ` +
          `times slower; expect longer boots and builds.`,
      );
  }
  const probed = o.kvm.probed;
  if (probed?.accelerator === 'tcg' && settings.qemu.kvm !== 'on') settings.qemu.kvm = 'off';
  const image = await prepareImage(o.build.manifest, settings, o.inputs, reporter, o.signal, source);
  const accelerator = probed?.accelerator ?? (settings.qemu.kvm === 'on' ? 'kvm' : 'tcg');
  if (image && o.inputs.cache) await restoreWarmStates(image.name, image.rev, settings, accelerator, reporter);
  if (image && o.inputs.cache && o.inputs.stageCache.stages.length)
    await restoreStageStates(settings, stageCachePrefix(image.name, image.rev, accelerator, await installedQemu()), reporter);
  return image;
}

async function uploadStep(inputs: ActionInputs): Promise<UploadResult> {
  try {
    const up = await uploadArtifacts(inputs.artifactName, inputs.artifactsDir);
    if (up.id !== undefined) {
      core.info(`Uploaded ${up.files} artifact file${up.files === 1 ? '' : 's'} as "${up.name}" (id ${up.id}).`);
      core.setOutput('artifact-id', String(up.id));
      if (up.url) core.setOutput('artifact-url', up.url);
    }
    core.saveState(STATE.uploadPending, 'false');
    return up;
  } catch (err) {
    core.warning(`uploading the artifacts as "${inputs.artifactName}" failed: ${message(err)}`);
    // The same call would fail again in the post step.
    core.saveState(STATE.uploadPending, 'false');
    return { name: inputs.artifactName, error: message(err) };
  }
}

function publishOutputs(results: BuildResult[], probed: Probed | undefined, final: Status): void {
  const first = results.find((r) => r.report)?.report?.facts;
  const accel = fact(first, 'accelerator', 'accel') ?? probed?.accelerator;
  if (accel !== undefined) core.setOutput('accelerator', String(accel));
  const boot = bootSeconds(first);
  if (boot !== undefined) core.setOutput('boot-seconds', String(boot));
  const start = fact(first, 'start');
  if (start !== undefined) core.setOutput('machine-start', String(start));
  core.setOutput('status', final);
}

function failUnlessPassed(results: BuildResult[], final: Status, builds: number, signalled: boolean): void {
  if (final === 'passed' || final === 'passed_with_failures') return;
  const failed = results.find((r) => r.error || (r.report && r.report.status !== 'passed' && r.report.status !== 'passed_with_failures'));
  const why = failed?.error ?? failed?.report?.reason ?? (signalled ? 'the build was cancelled' : final);
  // One line: the full message (with a console tail, say) is already in the log.
  core.setFailed(`${builds > 1 && failed ? `${failed.manifest}: ` : ''}build ${final}: ${why.split('\n')[0]}`);
}
