// runBuild in-process, with a driver that records every call and plays back scripted results
// (the way Djinn's runner/driver_test.go tests its runner). The real drivers have their own
// end-to-end tests; this one pins the runner's order of calls, statuses and abort reasons.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CreateContext, Driver } from '../src/drivers/driver.js';
import type { ExecResult, JobExecution, OutputSink } from '../src/core/job.js';
import { silentReporter } from '../src/core/reporter.js';
import { parseManifest } from '../src/manifest/parse.js';
import { makePlan } from '../src/manifest/plan.js';
import { runBuild, type RunOptions } from '../src/runner/runner.js';

type Behaviour = {
  create?: (ctx: CreateContext) => Promise<void>;
  execute?: (job: JobExecution, signal: AbortSignal) => Promise<ExecResult>;
};

class RecordingDriver implements Driver {
  readonly type = 'fake';
  readonly calls: string[] = [];
  constructor(private readonly behaviour: Behaviour = {}) {}
  async create(ctx: CreateContext): Promise<void> {
    this.calls.push('create');
    await this.behaviour.create?.(ctx);
  }
  async execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    this.calls.push(`execute ${job.stage}/${job.name}`);
    await sink.write(Buffer.from(`${job.name}\n`));
    return this.behaviour.execute ? this.behaviour.execute(job, signal) : { exitCode: 0 };
  }
  async upload(): Promise<void> {
    this.calls.push('upload');
  }
  async glob(): Promise<string[]> {
    return [];
  }
  async download(): Promise<void> {
    this.calls.push('download');
  }
  async destroy(): Promise<void> {
    this.calls.push('destroy');
  }
}

const MANIFEST = `driver:
  type: os
stages:
  - build
  - test
allow_failures:
  - test
jobs:
  - stage: build
    name: compile
    commands:
      - make
  - stage: build
    name: docs
    commands:
      - make docs
  - stage: test
    name: unit
    commands:
      - make check
`;

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function run(driver: Driver, extra: Partial<RunOptions> = {}, manifest = MANIFEST) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'djinn-fake-driver-'));
  dirs.push(dir);
  const plan = makePlan(parseManifest(manifest));
  return runBuild({
    plan,
    driver,
    reporter: silentReporter,
    env: [],
    artifactsDir: path.join(dir, 'artifacts'),
    objectsDir: dir,
    ...extra,
  });
}

/** Resolves when `signal` aborts, with the exit status a stopped job has. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<ExecResult>((resolve) =>
    signal.addEventListener('abort', () => resolve({ exitCode: null, error: 'stopped' }), { once: true }),
  );

describe('runBuild with a recording driver', () => {
  it('creates, runs every job in stage order, then destroys', async () => {
    const driver = new RecordingDriver();
    const report = await run(driver);
    expect(driver.calls).toEqual(['create', 'execute build/compile', 'execute build/docs', 'execute test/unit', 'destroy']);
    expect(report.status).toBe('passed');
    expect(report.jobs.map((j) => j.status)).toEqual(['passed', 'passed', 'passed']);
  });

  it('skips the jobs after a failed one and still destroys', async () => {
    const driver = new RecordingDriver({ execute: async (job) => ({ exitCode: job.name === 'compile' ? 2 : 0 }) });
    const report = await run(driver);
    expect(driver.calls).toEqual(['create', 'execute build/compile', 'destroy']);
    expect(report.status).toBe('failed');
    expect(report.jobs.map((j) => j.status)).toEqual(['failed', 'skipped', 'skipped']);
    expect(report.reason).toBe('job compile in stage build failed: exit status 2');
  });

  it('lets a stage with allowed failures pass with failures', async () => {
    const driver = new RecordingDriver({ execute: async (job) => ({ exitCode: job.name === 'unit' ? 1 : 0 }) });
    const report = await run(driver);
    expect(report.status).toBe('passed_with_failures');
    expect(report.jobs.map((j) => j.status)).toEqual(['passed', 'passed', 'passed_with_failures']);
    expect(driver.calls.at(-1)).toBe('destroy');
  });

  it('fails with the driver message when create throws, runs no job, and destroys', async () => {
    const driver = new RecordingDriver({
      create: async () => {
        throw new Error('no machine today');
      },
    });
    const report = await run(driver);
    expect(driver.calls).toEqual(['create', 'destroy']);
    expect(report.status).toBe('failed');
    expect(report.reason).toBe('no machine today');
    expect(report.jobs.every((j) => j.status === 'skipped')).toBe(true);
  });

  it('reports killed when the outer signal aborts during a job, and destroys', async () => {
    const outer = new AbortController();
    const driver = new RecordingDriver({
      execute: (job, signal) => {
        if (job.name === 'compile') setImmediate(() => outer.abort());
        return untilAborted(signal);
      },
    });
    const report = await run(driver, { signal: outer.signal });
    expect(driver.calls).toEqual(['create', 'execute build/compile', 'destroy']);
    expect(report.status).toBe('killed');
    expect(report.jobs[0]).toMatchObject({ status: 'killed', error: 'cancelled' });
    expect(report.reason).toBe('the build was cancelled');
  });

  it('reports timed_out when the whole-build timeout fires while the machine starts', async () => {
    const driver = new RecordingDriver({ create: (ctx) => untilAborted(ctx.signal).then(() => {}) });
    const report = await run(driver, { timeoutMs: 20 });
    expect(driver.calls).toEqual(['create', 'destroy']);
    expect(report.status).toBe('timed_out');
    expect(report.reason).toBe('the build timed out while starting the machine');
  });

  it('times out one job with the job timeout and skips the rest', async () => {
    const driver = new RecordingDriver({ execute: (_job, signal) => untilAborted(signal) });
    const report = await run(driver, { jobTimeoutMs: 20 });
    expect(driver.calls).toEqual(['create', 'execute build/compile', 'destroy']);
    expect(report.status).toBe('timed_out');
    expect(report.jobs.map((j) => j.status)).toEqual(['timed_out', 'skipped', 'skipped']);
  });

  it('does not destroy a machine the keep callback took over', async () => {
    const driver = new RecordingDriver();
    let keptWith: Driver | undefined;
    const report = await run(driver, { keep: async (d) => void (keptWith = d) });
    expect(keptWith).toBe(driver);
    expect(driver.calls).not.toContain('destroy');
    expect(report.status).toBe('passed');
  });
});
