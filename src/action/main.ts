// The action's main step: inputs → one build per manifest (each in its own
// machine) → artifacts upload, outputs and step summary. The engine does the work.
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
import { DriverError, message, UsageError } from '../core/errors.js';
import { makeDriver } from '../drivers/index.js';
import { parseManifestFile } from '../manifest/parse.js';
import { makePlan } from '../manifest/plan.js';
import { runBuild } from '../runner/runner.js';
import { worst, type Status } from '../core/status.js';
import { uploadArtifacts } from './artifacts.js';
import { ensureQemu, installMissing, prepareKvm } from './host.js';
import { onMissing } from '../host/requirements.js';
import { afterBuild, prepareImage } from './image-cache.js';
import { driverSettings, readInputs, workspaceDir } from './inputs.js';
import { findManifests } from '../runner/prepare.js';
import { restoreWarmStates, saveWarmStates } from './warm-cache.js';
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

async function main(signal: AbortSignal, results: BuildResult[], signalled: () => NodeJS.Signals | undefined): Promise<void> {
  const inputs = readInputs();
  // Builder tools are installed only when a build reaches the builder (not for a downloaded or cached image).
  onMissing((missing) => installMissing(missing));
  const workspace = workspaceDir();
  const files = inputs.manifest === '' ? [] : await findManifests(inputs.manifest, workspace);
  // Parse every manifest first: a mistake in the third fails before any machine boots.
  const builds = files.map((file) => {
    const manifest = parseManifestFile(path.resolve(workspace, file), { displayName: file });
    for (const w of manifest.warnings) core.warning(w.message, { file: w.file ?? file, startLine: w.line, startColumn: w.column });
    return { file, manifest, plan: makePlan(manifest, { stage: inputs.stage }) };
  });
  if (inputs.manifest === '') builds.push(bootOnlyBuild(inputs));
  checkKeep(inputs, builds);

  await mkdir(inputs.artifactsDir, { recursive: true });
  const runner = process.env.RUNNER_TEMP || os.tmpdir();
  await mkdir(runner, { recursive: true });
  const runDir = await mkdtemp(path.join(runner, 'djinn-'));
  core.saveState(STATE.runDir, runDir);
  core.saveState(STATE.artifactsDir, inputs.artifactsDir);
  core.saveState(STATE.artifactName, inputs.artifactName);
  if (inputs.uploadArtifacts) core.saveState(STATE.uploadPending, 'true');
  core.setOutput('artifacts-dir', inputs.artifactsDir);

  let probed: { accelerator: 'kvm' | 'tcg'; why?: string } | undefined;
  const bootFailed: string[] = [];
  for (const [i, b] of builds.entries()) {
    if (signal.aborted) break;
    const several = builds.length > 1;
    const prefix = several ? `${b.file}: ` : '';
    const artifactsDir = several ? path.join(inputs.artifactsDir, manifestSlug(b.file)) : inputs.artifactsDir;
    await mkdir(artifactsDir, { recursive: true });
    const tempDir = path.join(runDir, `build-${i + 1}`);
    await mkdir(tempDir, { recursive: true });
    const result: BuildResult = { manifest: b.file, artifactsDir };
    results.push(result);
    const reporter = new ActionsReporter(prefix);
    if (several) core.info(`\n━━ ${b.file} (${i + 1} of ${builds.length}) ━━`);
    try {
      const settings = driverSettings(inputs, tempDir);
      let image: Awaited<ReturnType<typeof prepareImage>>;
      if (b.manifest.driver.type === 'qemu') {
        await ensureQemu();
        if (settings.kvm !== 'off' && !probed) {
          probed = await prepareKvm();
          if (probed.why)
            core.warning(
              `KVM is not available: ${probed.why}. The machine runs under software emulation (TCG), which is several times slower; expect longer boots and builds.`,
            );
        }
        if (probed?.accelerator === 'tcg' && settings.kvm !== 'on') settings.kvm = 'off';
        image = await prepareImage(b.manifest, settings, inputs, reporter, signal);
        if (image && inputs.cache)
          await restoreWarmStates(
            image.name,
            image.rev,
            settings,
            probed?.accelerator ?? (settings.kvm === 'on' ? 'kvm' : 'tcg'),
            reporter,
          );
      }
      const copies = inputs.workspace === 'clone' ? [] : takeOverOwnSources(b.plan);
      const copy = inputs.workspace === 'auto' ? copies : [];
      if (inputs.workspace === 'off' && copies.length)
        reporter.info(`workspace: off: not cloning ${copies.map((c) => c.source.url).join(', ')}.`);
      if (inputs.keep) settings.detached = true;
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
        beforeJobs: copy.length ? (d) => copyWorkspace(d, copy, workspace, tempDir, reporter, signal) : undefined,
        keep: inputs.keep ? (d) => keepMachine(d, { runDir, env, masks: secretValues(inputs.env), startedAt }).then(() => {}) : undefined,
      });
      report.facts = { driver: b.manifest.driver.type, ...report.facts, ...(image?.note ? { imageNote: image.note } : {}) };
      reporter.buildEnd(report);
      result.report = report;
      if (report.status !== 'passed' && report.jobs.every((j) => j.status === 'skipped' || j.status === 'queued')) bootFailed.push(tempDir);
      if (b.manifest.driver.type === 'qemu') {
        await afterBuild(settings, report, reporter);
        await saveWarmStates(settings, report, reporter);
      }
    } catch (err) {
      if (err instanceof UsageError) {
        reporter.error(err.format(), err.position);
        result.error = err.format();
      } else if (err instanceof DriverError) {
        reporter.error(err.message);
        result.error = err.message;
      } else throw err;
      bootFailed.push(tempDir);
    }
  }
  if (bootFailed.length) core.saveState(STATE.bootFailed, JSON.stringify(bootFailed));

  const status = results.reduce<Status>((s, r) => worst(s, r.report?.status ?? 'failed'), 'passed');
  const final: Status = signalled() ? worst(status, 'killed') : status;
  let upload: UploadResult | undefined;
  // After a signal the runner may kill us at any moment: the post step uploads.
  if (inputs.uploadArtifacts && !signalled()) {
    try {
      const up = await uploadArtifacts(inputs.artifactName, inputs.artifactsDir);
      if (up.id !== undefined) {
        core.info(`Uploaded ${up.files} artifact file${up.files === 1 ? '' : 's'} as "${up.name}" (id ${up.id}).`);
        core.setOutput('artifact-id', String(up.id));
        if (up.url) core.setOutput('artifact-url', up.url);
      }
      upload = up;
      core.saveState(STATE.uploadPending, 'false');
    } catch (err) {
      upload = { name: inputs.artifactName, error: message(err) };
      core.warning(`uploading the artifacts as "${inputs.artifactName}" failed: ${message(err)}`);
      // The same call would fail again in the post step.
      core.saveState(STATE.uploadPending, 'false');
    }
  }

  const first = results.find((r) => r.report)?.report?.facts;
  const accel = fact(first, 'accelerator', 'accel') ?? probed?.accelerator;
  if (accel !== undefined) core.setOutput('accelerator', String(accel));
  const boot = bootSeconds(first);
  if (boot !== undefined) core.setOutput('boot-seconds', String(boot));
  const start = fact(first, 'start');
  if (start !== undefined) core.setOutput('machine-start', String(start));
  core.setOutput('status', final);
  await writeSummary(results, upload).catch((err: unknown) => core.warning(`cannot write the step summary: ${message(err)}`));
  core.saveState(STATE.finished, 'true');

  if (final !== 'passed' && final !== 'passed_with_failures') {
    const failed = results.find((r) => r.error || (r.report && r.report.status !== 'passed' && r.report.status !== 'passed_with_failures'));
    const why = failed?.error ?? failed?.report?.reason ?? (signalled() ? 'the build was cancelled' : final);
    // One line: the full message (with a console tail, say) is already in the log.
    core.setFailed(`${builds.length > 1 && failed ? `${failed.manifest}: ` : ''}build ${final}: ${why.split('\n')[0]}`);
  }
}
