// The CLI's reporter: live output, headers, summary, and masking of -env
// values even when a secret or a UTF-8 character is split across chunks.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { heldBack, summaryTable, TerminalReporter } from '../src/cli/terminal-reporter.js';
import type { JobReport } from '../src/core/reporter.js';

function capture(secrets: string[] = []) {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (c: Buffer) => (o += c.toString()));
  err.on('data', (c: Buffer) => (e += c.toString()));
  const rep = new TerminalReporter({ out, err }, secrets);
  return { rep, out: () => o, err: () => e };
}

const job: JobReport = { stage: 'make', name: 'make.1', status: 'running', durationMs: 0 };

describe('TerminalReporter', () => {
  it('writes output as it arrives, between a header and a status line', () => {
    const c = capture();
    c.rep.jobStart(job);
    c.rep.jobOutput(job, Buffer.from('partial'));
    expect(c.out()).toBe('==> Running job make.1 in stage make\npartial');
    c.rep.jobEnd({ ...job, status: 'passed', durationMs: 1500 });
    expect(c.out()).toBe('==> Running job make.1 in stage make\npartial\n==> Job make.1 passed in 1.5s\n');
  });

  it('masks a secret split across chunks, and a UTF-8 character split across chunks stays whole', () => {
    const c = capture(['hunter22']);
    c.rep.jobStart(job);
    const bytes = Buffer.from('pw=hunter22 ✓ end hun');
    const cut = bytes.indexOf(Buffer.from('✓')) + 1; // inside the 3-byte check mark
    c.rep.jobOutput(job, bytes.subarray(0, 6)); // "pw=hun"
    c.rep.jobOutput(job, bytes.subarray(6, cut));
    c.rep.jobOutput(job, bytes.subarray(cut));
    c.rep.jobEnd({ ...job, status: 'passed' });
    expect(c.out()).toContain('pw=*** ✓ end hun\n==> Job make.1 passed');
    expect(c.out()).not.toContain('hunter22');
  });

  it('masks secrets in runner lines too', () => {
    const c = capture(['s3cret']);
    c.rep.info('using s3cret');
    c.rep.error('failed with s3cret');
    expect(c.out()).toBe('using ***\n');
    expect(c.err()).toBe('error: failed with ***\n');
  });

  it('heldBack keeps only what could begin a secret', () => {
    expect(heldBack('abc hun', ['hunter2'])).toBe(3);
    expect(heldBack('abc', ['hunter2'])).toBe(0);
    expect(heldBack('x h', ['hunter2', 'hx'])).toBe(1);
  });

  it('the summary lists every job with status and duration, skipped without one', () => {
    const table = summaryTable({
      status: 'failed',
      durationMs: 61_000,
      jobs: [
        { stage: 'make', name: 'make.1', status: 'failed', durationMs: 2000 },
        { stage: 'deploy', name: 'upload', status: 'skipped', durationMs: 0 },
      ],
      artifacts: [],
      facts: {},
    });
    expect(table).toBe(
      [
        'STAGE   JOB     STATUS   DURATION',
        'make    make.1  failed   2.0s',
        'deploy  upload  skipped  -',
        'Done. Build failed in 1m01s.',
      ].join('\n'),
    );
  });
});
