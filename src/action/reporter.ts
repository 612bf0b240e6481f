// The engine's reporter for a GitHub Actions log: each job a collapsible group
// with its output live, errors and warnings as annotations at the manifest line.
import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';
import type { BuildReport, JobReport, Reporter, SourcePosition } from '../core/reporter.js';
import { drained } from '../util/drain.js';
import { formatDuration } from '../util/duration.js';

/** Writes to the log; `false` (as stream.write returns) means the buffer is full: wait for stdout's drain. */
export type Write = (text: string | Buffer) => unknown;

function annotation(pos?: SourcePosition): core.AnnotationProperties | undefined {
  if (!pos?.file) return undefined;
  return { file: pos.file, startLine: pos.line, startColumn: pos.column };
}

export class ActionsReporter implements Reporter {
  /** While set, the runner ignores `::` commands: a guest must not be able to set outputs or masks. */
  private stopToken: string | undefined;
  private atLineStart = true;
  readonly jobs: JobReport[] = [];
  build: BuildReport | undefined;

  constructor(
    /** Shown in group titles when several manifests run. */
    private readonly prefix = '',
    private readonly write: Write = (t) => process.stdout.write(t),
  ) {}

  private resume(): void {
    if (!this.atLineStart) this.write('\n');
    this.atLineStart = true;
    if (this.stopToken) {
      this.write(`::${this.stopToken}::\n`);
      this.stopToken = undefined;
    }
  }

  info(message: string): void {
    this.resume();
    core.info(message);
  }

  warn(message: string, position?: SourcePosition): void {
    this.resume();
    core.warning(message, annotation(position));
  }

  error(message: string, position?: SourcePosition): void {
    this.resume();
    // Annotations are few (10 errors a step): one per manifest place; the build's
    // own reason becomes the step's failure annotation, so unplaced errors are log lines.
    if (position?.file) core.error(message, annotation(position));
    else core.info(`\u001b[31mError: ${message}\u001b[0m`);
  }

  jobStart(job: JobReport): void {
    this.resume();
    core.startGroup(`${this.prefix}${job.stage} / ${job.name}`);
  }

  jobOutput(_job: JobReport, chunk: Buffer): void | Promise<void> {
    if (chunk.length === 0) return;
    if (!this.stopToken) {
      if (!this.atLineStart) this.write('\n');
      this.stopToken = randomBytes(16).toString('hex');
      this.write(`::stop-commands::${this.stopToken}\n`);
    }
    this.atLineStart = chunk[chunk.length - 1] === 0x0a;
    if (this.write(chunk) !== false) return;
    // The runner's stdout pipe is full: hold the job's output back until it drains.
    return drained(process.stdout);
  }

  jobEnd(job: JobReport): void {
    this.resume();
    core.endGroup();
    this.jobs.push({ ...job });
    const took = job.durationMs ? ` in ${formatDuration(job.durationMs)}` : '';
    core.info(`${statusMark(job.status)} ${job.stage} / ${job.name}: ${job.status}${took}`);
  }

  buildEnd(build: BuildReport): void {
    this.resume();
    this.build = build;
    core.info(`${this.prefix}build ${build.status} in ${formatDuration(build.durationMs)}${build.reason ? `: ${build.reason}` : ''}`);
  }
}

export function statusMark(status: string): string {
  switch (status) {
    case 'passed':
      return '✅';
    case 'cached':
      return '♻️';
    case 'passed_with_failures':
      return '⚠️';
    case 'skipped':
    case 'queued':
      return '⏭️';
    case 'timed_out':
      return '⏱️';
    case 'killed':
      return '🛑';
    default:
      return '❌';
  }
}
