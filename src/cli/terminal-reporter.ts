// The CLI's reporter: Djinn's lines on stdout, a header before each job,
// live output, and a summary table at the end. Warnings and errors on stderr.
import { StringDecoder } from 'node:string_decoder';
import { formatLocated } from '../core/errors.js';
import type { BuildReport, JobReport, Reporter, SourcePosition } from '../core/reporter.js';
import { formatDuration } from '../util/duration.js';
import { progressBar, type ProgressEvent } from '../images/fetch/progress.js';
import { drained } from '../util/drain.js';
import { tableLines } from './table.js';

export interface Streams {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export class TerminalReporter implements Reporter {
  private midLine = false;
  /** With secrets: decodes output across chunk boundaries and holds back a tail that may be the start of a secret. */
  private decoder = new StringDecoder('utf8');
  private pending = '';
  constructor(
    private readonly s: Streams = { out: process.stdout, err: process.stderr },
    private readonly secrets: string[] = [],
  ) {}

  private mask(text: string): string {
    let t = text;
    for (const s of this.secrets) if (s) t = t.split(s).join('***');
    return t;
  }

  private line(stream: NodeJS.WritableStream, text: string): void {
    if (this.pending) this.flushOutput();
    if (this.midLine) {
      this.s.out.write('\n');
      this.midLine = false;
    }
    stream.write(`${this.mask(text)}\n`);
  }

  info(message: string): void {
    this.line(this.s.out, message);
  }
  warn(message: string, position?: SourcePosition): void {
    this.line(this.s.err, `warning: ${formatLocated(message, position ?? {})}`);
  }
  error(message: string, position?: SourcePosition): void {
    this.line(this.s.err, `error: ${formatLocated(message, position ?? {})}`);
  }
  /** Image download progress: a redrawn bar on a terminal; false elsewhere, so the caller prints a line per ~10 %. */
  progress(e: ProgressEvent): boolean {
    if (!(this.s.out as NodeJS.WriteStream).isTTY) return false;
    this.s.out.write(`\r${this.mask(progressBar(e))}\x1b[K${e.finished ? '\n' : ''}`);
    this.midLine = !e.finished;
    return true;
  }
  jobStart(job: JobReport): void {
    this.line(this.s.out, `==> Running job ${job.name} in stage ${job.stage}`);
  }
  jobOutput(_job: JobReport, chunk: Buffer): void | Promise<void> {
    if (this.secrets.length === 0) {
      if (chunk.length > 0) this.midLine = chunk[chunk.length - 1] !== 0x0a;
      return this.drained(this.s.out.write(chunk));
    }
    const text = this.pending + this.decoder.write(chunk);
    const keep = heldBack(text, this.secrets);
    this.pending = text.slice(text.length - keep);
    return this.writeOut(this.mask(text.slice(0, text.length - keep)));
  }
  private writeOut(text: string): void | Promise<void> {
    if (!text) return;
    this.midLine = !text.endsWith('\n');
    return this.drained(this.s.out.write(text));
  }
  /** When stdout's buffer is full, a promise for its drain: the job's output source waits. */
  private drained(ok: boolean): void | Promise<void> {
    if (!ok) return drained(this.s.out);
  }
  private flushOutput(): void {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    this.decoder = new StringDecoder('utf8');
    this.writeOut(this.mask(rest));
  }
  jobEnd(job: JobReport): void {
    this.flushOutput();
    this.line(this.s.out, `==> Job ${job.name} ${job.status} in ${formatDuration(job.durationMs)}`);
  }
  buildEnd(build: BuildReport): void {
    this.line(this.s.out, '');
    this.line(this.s.out, summaryTable(build));
    if (build.reason && build.status !== 'passed') this.line(this.s.err, `djinn: ${build.reason}`);
  }
}

/** How many characters at the end of `text` could begin a secret (so must wait for the next chunk). */
export function heldBack(text: string, secrets: string[]): number {
  let keep = 0;
  for (const secret of secrets) {
    for (let n = Math.min(secret.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(secret.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}

export function summaryTable(build: BuildReport): string {
  const rows = build.jobs.map((j) => [j.stage, j.name, j.status, j.status === 'skipped' ? '-' : formatDuration(j.durationMs)]);
  const lines = tableLines([['STAGE', 'JOB', 'STATUS', 'DURATION'], ...rows]);
  lines.push(`Done. Build ${build.status} in ${formatDuration(build.durationMs)}.`);
  return lines.join('\n');
}
