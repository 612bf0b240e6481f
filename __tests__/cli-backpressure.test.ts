// A job that prints far more than a slow reader takes must not pile up in
// our memory: the CLI pauses the job's output while its stdout pipe is full.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/cli.js';

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('output backpressure (os driver, through dist/cli.js)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-backpressure-'));
    // 1 GiB of output: far more than we could hold if it were buffered.
    writeFileSync(
      path.join(dir, '.djinn.yml'),
      [
        'driver: {type: os}',
        'stages: [flood]',
        'jobs:',
        '- stage: flood',
        '  commands:',
        '  - "head -c 1073741824 /dev/zero | tr \'\\\\0\' x"',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds a job back while nobody reads stdout, then delivers every byte', async () => {
    const child = spawn(process.execPath, [CLI, '-manifest', path.join(dir, '.djinn.yml'), '-artifacts', path.join(dir, 'out')], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Read nothing for a while: the job keeps producing, we must not keep taking.
    child.stdout.pause();
    await sleep(4000);
    const whilePaused = rssMiB(child.pid!);
    let bytes = 0;
    let peak = whilePaused;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssMiB(child.pid!));
      } catch {
        // exited
      }
    }, 200);
    // The job's output is one unbroken run of x; other lines (the set -x trace, the random
    // working-folder name) may hold a stray x, so measure the longest run.
    let run = 0;
    child.stdout.on('data', (c: Buffer) => {
      for (let i = 0; i < c.length; i++) {
        run = c[i] === 0x78 ? run + 1 : 0;
        if (run > bytes) bytes = run;
      }
    });
    child.stdout.resume();
    const code = await closed;
    clearInterval(sampler);
    process.stdout.write(`backpressure: RSS ${whilePaused.toFixed(0)} MiB while paused, peak ${peak.toFixed(0)} MiB\n`);
    expect(code).toBe(0);
    // Every byte of the job's output arrived.
    expect(bytes).toBe(1024 * 1024 * 1024);
    // Node and the bundle alone take ~60 MiB; buffering even a quarter of the output would be 256 MiB more.
    expect(whilePaused).toBeLessThan(200);
    expect(peak).toBeLessThan(250);
  }, 300_000);
});
