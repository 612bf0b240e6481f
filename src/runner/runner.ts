// Runs a plan in one machine: create the driver, place objects, run every
// stage's jobs in order, collect artifacts after each job whose script ran,
// and always destroy the driver.
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Driver, ResumedStage, StageCandidate } from '../drivers/driver.js';
import type { StageCacheSettings } from '../config/stage-cache.js';
import { shellWord, type PlanStage } from '../manifest/plan.js';
import { sha256File } from '../util/sha256.js';
import { stageKey } from './stage-key.js';
import type { EnvVar } from '../core/job.js';
import type { Plan, PlanJob } from '../manifest/plan.js';
import { formatDuration } from '../util/duration.js';
import { hasMeta } from '../util/glob.js';
import { setLongTimeout } from '../util/long-timer.js';
import { artifactDestination, objectSource } from '../util/paths.js';
import type { ArtifactReport, BuildReport, JobReport, Reporter } from '../core/reporter.js';
import { jobScript, scriptFileName } from './script.js';
import { worst, type Status } from '../core/status.js';
import { message } from '../core/errors.js';

/** Why a build was stopped from outside: the reason given to AbortController.abort(). */
export type StopReason = 'killed' | 'timed_out';

export interface RunOptions {
  plan: Plan;
  driver: Driver;
  reporter: Reporter;
  env: EnvVar[];
  artifactsDir: string;
  objectsDir: string;
  /** Whole build, milliseconds; 0 or undefined for none. */
  timeoutMs?: number;
  /** Each job, milliseconds; 0 or undefined for none. */
  jobTimeoutMs?: number;
  /** Abort with reason 'killed' on SIGINT/SIGTERM. */
  signal?: AbortSignal;
  /** Called after the driver is created and objects are placed, before the first job (e.g. copy a workspace in). */
  beforeJobs?: (driver: Driver) => Promise<void>;
  /**
   * Leave the machine running after the jobs (the action's `keep`): called once
   * the stages are done, unless the machine never started or the build was
   * stopped. When it resolves the callback owns the machine and the runner does
   * not destroy it; when it throws, the build fails with its message.
   */
  keep?: (driver: Driver) => Promise<void>;
  /** Save the machine after these stages and start later builds from there (docs/warm-start.md, "Stage states"). */
  stageCache?: StageCacheSettings;
}

class Build {
  readonly jobs: JobReport[];
  readonly artifacts: ArtifactReport[] = [];
  /** Artifacts that could not be collected: the build fails at its end, after every job ran. */
  artifactErrors = 0;
  /** Destination path -> the machine file collected there, so that nothing is overwritten within a build. */
  readonly collected = new Map<string, string>();
  readonly stop = new AbortController();
  private readonly started = Date.now();

  constructor(private readonly o: RunOptions) {
    this.jobs = o.plan.stages.flatMap((s) =>
      s.jobs.map((j) => ({ stage: s.name, name: j.name, status: 'queued' as Status, durationMs: 0, position: j.position })),
    );
  }

  stopReason(): StopReason | undefined {
    return this.stop.signal.aborted ? (this.stop.signal.reason as StopReason) : undefined;
  }

  report(reason?: string): BuildReport {
    let status: Status = 'passed';
    for (const j of this.jobs)
      if (j.status !== 'queued' && j.status !== 'skipped' && j.status !== 'cached') status = worst(status, j.status);
    const stopped = this.stopReason();
    if (stopped) status = worst(status, stopped);
    if (reason && (status === 'passed' || status === 'passed_with_failures')) status = 'failed';
    return {
      status,
      durationMs: Date.now() - this.started,
      jobs: this.jobs,
      artifacts: this.artifacts,
      facts: this.o.driver.facts?.() ?? {},
      reason,
    };
  }
}

export async function runBuild(o: RunOptions): Promise<BuildReport> {
  const b = new Build(o);
  const { reporter, driver } = o;
  const onOuterAbort = () => b.stop.abort('killed');
  if (o.signal?.aborted) onOuterAbort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const timer = o.timeoutMs ? setLongTimeout(() => b.stop.abort('timed_out'), o.timeoutMs) : undefined;

  let reason: string | undefined;
  let kept = false;
  try {
    reporter.info(`Running with driver ${driver.type}...`);
    const stageKeys = await stageKeysFor(o);
    const stageStates = stageKeys.size
      ? {
          candidates: [...stageKeys].reverse().map(([i, key]): StageCandidate => ({ stage: o.plan.stages[i]!.name, key })),
          maxAgeMs: o.stageCache!.maxAgeMs,
        }
      : undefined;
    try {
      await abortable(driver.create({ reporter, env: o.env, signal: b.stop.signal, stageStates }), b.stop.signal);
    } catch (err) {
      reason = b.stopReason() ? stopMessage(b.stopReason()!, 'while starting the machine') : message(err);
      reporter.error(reason);
      return finish(b, reason);
    }
    const resumed = stageStates ? driver.resumedStage?.() : undefined;
    const resumedIndex = resumed ? o.plan.stages.findIndex((s) => s.name === resumed.stage) : -1;
    // A restored machine has the objects already (their contents are part of the key).
    const objectErrors = resumedIndex >= 0 ? 0 : await placeObjects(o, b);
    if (resumedIndex >= 0) await markCached(o, b, resumed!, resumedIndex);
    if (objectErrors > 0) {
      reason = `${objectErrors} object${objectErrors > 1 ? 's' : ''} could not be placed (see above); no job ran`;
      return finish(b, reason);
    }
    if (o.beforeJobs && !b.stopReason()) {
      try {
        await o.beforeJobs(driver);
      } catch (err) {
        reason = message(err);
        reporter.error(reason);
        return finish(b, reason);
      }
    }
    reason = await runStages(o, b, { keys: stageKeys, resumedIndex });
    if (o.keep && !b.stopReason()) {
      try {
        await o.keep(driver);
        kept = true;
      } catch (err) {
        reason ??= `cannot keep the machine: ${message(err)}`;
        reporter.error(`cannot keep the machine: ${message(err)}`);
      }
    }
    return finish(b, reason);
  } finally {
    timer?.clear();
    o.signal?.removeEventListener('abort', onOuterAbort);
    if (!kept) await driver.destroy();
  }

  function finish(build: Build, why?: string): BuildReport {
    for (const j of build.jobs) if (j.status === 'queued') j.status = 'skipped';
    if (!why && build.artifactErrors > 0 && !build.jobs.some((j) => j.status === 'failed' || j.status === 'timed_out')) {
      const n = build.artifactErrors;
      why = `${n} artifact${n > 1 ? 's' : ''} could not be collected (see the artifact errors above)`;
      reporter.error(why);
    }
    const rep = build.report(why ?? (build.stopReason() ? stopMessage(build.stopReason()!, '') : undefined));
    if (!rep.reason && (rep.status === 'failed' || rep.status === 'timed_out')) {
      const bad = rep.jobs.find((j) => j.status === rep.status);
      const verb = rep.status === 'failed' ? 'failed' : 'timed out';
      if (bad) rep.reason = `job ${bad.name} in stage ${bad.stage} ${verb}${bad.error ? `: ${bad.error}` : ''}`;
    }
    return rep;
  }
}

function stopMessage(r: StopReason, where: string): string {
  const what = r === 'killed' ? 'the build was cancelled' : 'the build timed out';
  return where ? `${what} ${where}` : what;
}

/** Rejects as soon as `signal` aborts; the driver's own cleanup happens in destroy(). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Places every object; returns how many failed (each reported). Any failure stops the build before its first job. */
async function placeObjects(o: RunOptions, b: Build): Promise<number> {
  let errors = 0;
  for (const obj of o.plan.objects) {
    if (b.stopReason()) return errors;
    o.reporter.info(`Placing object ${obj.src} => ${obj.dst}`);
    const src = objectSource(o.objectsDir, obj.src);
    if ('error' in src) {
      o.reporter.error(`object error: ${src.error}`, obj.position);
      errors++;
      continue;
    }
    const st = await stat(src.path).catch(() => undefined);
    if (!st?.isFile()) {
      o.reporter.error(
        `object error: object "${obj.src}" is ${st?.isDirectory() ? 'a folder' : 'not a regular file'}; objects are files.`,
        obj.position,
      );
      errors++;
      continue;
    }
    try {
      await o.driver.upload(src.path, obj.dst, 0o700);
    } catch (err) {
      o.reporter.error(`object error: ${obj.src} => ${obj.dst}: ${message(err)}`, obj.position);
      errors++;
    }
  }
  if (o.plan.objects.length) o.reporter.info('');
  return errors;
}

interface StageRun {
  /** Stage index -> the build's part of its state key, for the stages to save. */
  keys: Map<number, string>;
  /** The stage the machine was restored after (-1: none): it and the stages before it are cached. */
  resumedIndex: number;
}

async function runStages(o: RunOptions, b: Build, run: StageRun): Promise<string | undefined> {
  let index = 0;
  for (const [stageIndex, stage] of o.plan.stages.entries()) {
    const cached = stageIndex <= run.resumedIndex;
    for (const job of stage.jobs) {
      const rep = b.jobs[index++];
      if (b.stopReason()) return undefined;
      if (rep.status === 'cached') continue;
      const failedBefore = b.jobs.some((j) => j.status === 'failed' || j.status === 'timed_out');
      if (failedBefore) continue; // stays queued, reported as skipped
      // Sources are always fresh: after a restore the clone runs again into an emptied folder.
      const fresh = cached && job.source ? { ...job, commands: [`rm -rf ${shellWord(cloneFolder(job.source))}`, ...job.commands] } : job;
      await runJob(o, b, fresh, rep, stage.allowFailures);
    }
    const key = run.keys.get(stageIndex);
    if (key !== undefined && !cached && !b.stopReason()) await saveStage(o, b, stage, key);
  }
  return undefined;
}

/** The folder `git clone` makes for a source: its `=> dir`, else the last part of the URL without `.git`. */
function cloneFolder(source: NonNullable<PlanJob['source']>): string {
  if (source.dir) return source.dir;
  return (
    source.url
      .replace(/[/\\]+$/, '')
      .replace(/\.git$/, '')
      .split(/[/:]/)
      .pop() || 'unnamed-source'
  );
}

/** The build's part of the state key of every stage to save, by index; empty when stage caching is off or impossible. */
async function stageKeysFor(o: RunOptions): Promise<Map<number, string>> {
  const keys = new Map<number, string>();
  const c = o.stageCache;
  if (!c?.stages.length) return keys;
  const names = o.plan.stages.map((s) => s.name);
  const unknown = c.stages.filter((s) => !names.includes(s));
  if (unknown.length)
    o.reporter.warn(`stage cache: the plan has no stage ${unknown.join(', ')}; its stages are: ${names.join(', ') || '(none)'}`);
  if (!o.driver.saveStage) {
    o.reporter.warn(`stage cache: the ${o.driver.type} driver cannot save a running machine; every stage runs`);
    return keys;
  }
  return (await planStageKeys(o.plan, o.env, o.objectsDir, c)) ?? keys; // unreadable objects: their error comes when placing them
}

/**
 * The build's part of the state key of each stage named in `c`, by stage index
 * (also for `djinn plan`); undefined when an object cannot be read.
 */
export async function planStageKeys(
  plan: Plan,
  env: EnvVar[],
  objectsDir: string,
  c: StageCacheSettings,
): Promise<Map<number, string> | undefined> {
  const objects: { src: string; dst: string; sha256: string }[] = [];
  for (const obj of plan.objects) {
    const src = objectSource(objectsDir, obj.src);
    const sha256 = 'error' in src ? undefined : await sha256File(src.path).catch(() => undefined);
    if (!sha256) return undefined;
    objects.push({ src: obj.src, dst: obj.dst, sha256 });
  }
  const input = { env, objects, stages: plan.stages, userKey: c.userKey };
  const keys = new Map<number, string>();
  for (const [i, s] of plan.stages.entries()) if (c.stages.includes(s.name)) keys.set(i, stageKey(input, i));
  return keys;
}

/** Saves the machine after a stage whose every job passed (never after allowed failures); a failure is one warning. */
async function saveStage(o: RunOptions, b: Build, stage: PlanStage, key: string): Promise<void> {
  // The machine after a job that failed (failures allowed) is not one a later build should start from.
  const upTo = b.jobs.slice(0, b.jobs.findLastIndex((j) => j.stage === stage.name) + 1);
  if (!upTo.some((j) => j.stage === stage.name) || !upTo.every((j) => j.status === 'passed' || j.status === 'cached')) return;
  o.reporter.info(`stage cache: saving the machine after stage ${stage.name}...`);
  const artifacts = b.artifacts.map((a) => ({ job: a.job, src: a.src, dst: a.dst, path: a.path }));
  const r = await o.driver.saveStage!({ stage: stage.name, key, artifacts });
  if ('error' in r)
    o.reporter.warn(`stage cache: could not save the machine after stage ${stage.name} (${r.error}); the next build runs it again`);
  else
    o.reporter.info(
      `stage cache: saved the machine after stage ${stage.name} in ${r.seconds.toFixed(1)}s (${(r.bytes / 1e6).toFixed(0)} MB); later builds with the same stages up to here start from it`,
    );
}

/** The jobs up to the restored stage are `cached` (the clones excepted: they run again), and their artifacts are placed again. */
async function markCached(o: RunOptions, b: Build, resumed: ResumedStage, index: number): Promise<void> {
  const names = new Set(o.plan.stages.slice(0, index + 1).map((s) => s.name));
  const sources = new Set(o.plan.stages.flatMap((s) => s.jobs.filter((j) => j.source).map((j) => `${s.name}\0${j.name}`)));
  for (const rep of b.jobs) {
    if (!names.has(rep.stage) || sources.has(`${rep.stage}\0${rep.name}`)) continue;
    rep.status = 'cached';
    rep.cachedAt = resumed.savedAt;
    o.reporter.info(`==> Job ${rep.name} cached (stage ${rep.stage}, machine saved at ${resumed.savedAt})`);
  }
  for (const a of resumed.artifacts) {
    const dest = artifactDestination(o.artifactsDir, a.dst);
    if ('error' in dest) {
      b.artifactErrors++;
      o.reporter.error(`artifact error: ${dest.error}.`);
      continue;
    }
    const tmp = `${dest.path}.part-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(path.dirname(dest.path), { recursive: true });
      await copyFile(a.path, tmp);
      await rename(tmp, dest.path);
      b.collected.set(dest.path, a.src);
      const { size } = await stat(dest.path);
      b.artifacts.push({ job: a.job, src: a.src, dst: a.dst, path: dest.path, bytes: size });
      o.reporter.info(`Placed cached artifact ${a.src} => ${a.dst}`);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      b.artifactErrors++;
      o.reporter.error(`artifact error: cached ${a.src} => ${a.dst}: ${message(err)}`);
    }
  }
  o.reporter.info('');
}

async function runJob(o: RunOptions, b: Build, job: PlanJob, rep: JobReport, allowFailures: boolean): Promise<void> {
  const { reporter, driver } = o;
  rep.status = 'running';
  const started = Date.now();
  reporter.jobStart(rep);
  if (job.commands.length === 0) {
    rep.status = 'passed';
    rep.durationMs = 0;
    reporter.jobEnd(rep);
    return;
  }
  const jobStop = new AbortController();
  const jobTimer = o.jobTimeoutMs ? setLongTimeout(() => jobStop.abort('timed_out'), o.jobTimeoutMs) : undefined;
  const signal = AbortSignal.any([b.stop.signal, jobStop.signal]);
  let scriptRan = false;
  try {
    const result = await driver.execute(
      { stage: rep.stage, name: rep.name, scriptName: scriptFileName(rep.name), script: jobScript(job.commands), env: o.env },
      { write: (chunk) => reporter.jobOutput(rep, chunk) },
      signal,
    );
    scriptRan = true;
    rep.exitCode = result.exitCode;
    if (b.stopReason()) {
      rep.status = b.stopReason()!;
      rep.error = b.stopReason() === 'killed' ? 'cancelled' : 'the build timed out';
    } else if (jobStop.signal.aborted) {
      rep.status = 'timed_out';
      rep.error = `the job ran longer than its timeout of ${formatDuration(o.jobTimeoutMs ?? 0)}`;
    } else if (result.exitCode === 0) {
      rep.status = 'passed';
    } else {
      rep.status = allowFailures ? 'passed_with_failures' : 'failed';
      rep.error = result.error ?? `exit status ${result.exitCode}`;
    }
  } catch (err) {
    rep.status = b.stopReason() ?? (allowFailures ? 'passed_with_failures' : 'failed');
    rep.error = message(err);
  } finally {
    jobTimer?.clear();
    rep.durationMs = Date.now() - started;
  }
  if (rep.error && rep.status === 'passed_with_failures') {
    reporter.warn(`job ${rep.name} in stage ${rep.stage} failed (failures allowed in this stage): ${rep.error}`, rep.position);
  } else if (rep.error && rep.status !== 'passed') reporter.error(`job ${rep.name} in stage ${rep.stage}: ${rep.error}`, rep.position);
  // Artifacts after every job whose script ran, even a failed one. After the build's timeout, those of
  // the job it stopped too (they often show why it hung), within a budget; not after a cancel, which
  // wants the machine gone now.
  if (scriptRan && !b.stopReason()) await collectArtifacts(o, b, job);
  else if (scriptRan && b.stopReason() === 'timed_out' && job.artifacts.length) {
    reporter.info(
      `The build timed out; collecting the artifacts of job ${rep.name} (at most ${formatDuration(AFTER_TIMEOUT_BUDGET_MS)})...`,
    );
    await collectArtifacts(o, b, job, Date.now() + AFTER_TIMEOUT_BUDGET_MS);
  }
  reporter.jobEnd(rep);
}

/** How long, after the build's timeout, we still collect the stopped job's artifacts (checked between files). */
const AFTER_TIMEOUT_BUDGET_MS = 60_000;

async function collectArtifacts(o: RunOptions, b: Build, job: PlanJob, deadline = Infinity): Promise<void> {
  const { reporter, driver } = o;
  const fail = (text: string, position?: PlanJob['position']) => {
    b.artifactErrors++;
    reporter.error(`artifact error: ${text}`, position);
  };
  const outOfTime = () => {
    if (Date.now() < deadline) return false;
    fail(`gave up collecting the artifacts of job ${job.name}: no time left after the build's timeout.`);
    return true;
  };
  for (const art of job.artifacts) {
    if (outOfTime()) return;
    reporter.info('');
    reporter.info(`Collecting artifact ${art.src} => ${art.dst}`);
    let matches: string[];
    try {
      matches = await driver.glob(art.src);
    } catch (err) {
      fail(`${art.src}: ${message(err)}`, art.position);
      continue;
    }
    if (matches.length === 0) {
      reporter.warn(
        `artifact ${art.src}: ${hasMeta(art.src) ? 'no file matches the pattern' : 'no such file in the machine'}; nothing collected.`,
        art.position,
      );
      continue;
    }
    const starred = art.dst.includes('*');
    if (matches.length > 1 && !starred) {
      fail(
        `${art.src} matches ${matches.length} files ` +
          `(${matches.slice(0, 5).join(', ')}${matches.length > 5 ? ', ...' : ''}) but the destination "${art.dst}" has ` +
          `no "*"; use "=> dir/*" to keep each file's name.`,
        art.position,
      );
      continue;
    }
    for (const m of matches) {
      if (outOfTime()) return;
      const rel = starred ? art.dst.replaceAll('*', path.posix.basename(m)) : art.dst;
      const dest = artifactDestination(o.artifactsDir, rel);
      if ('error' in dest) {
        fail(`${dest.error}.`, art.position);
        continue;
      }
      const earlier = b.collected.get(dest.path);
      if (earlier !== undefined) {
        fail(
          `${m} => ${rel}: ${rel} already holds ${earlier}, collected earlier in this build; nothing is overwritten. Give each file its own destination.`,
          art.position,
        );
        continue;
      }
      const tmp = `${dest.path}.part-${randomBytes(4).toString('hex')}`;
      try {
        await mkdir(path.dirname(dest.path), { recursive: true });
        await driver.download(m, tmp);
        await rename(tmp, dest.path);
        b.collected.set(dest.path, m);
        const { size } = await stat(dest.path);
        b.artifacts.push({ job: job.name, src: m, dst: rel, path: dest.path, bytes: size });
        if (matches.length > 1 || m !== art.src) reporter.info(`  ${m} => ${rel}`);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => {});
        fail(`${m} => ${rel}: ${message(err)}`, art.position);
      }
    }
  }
}
