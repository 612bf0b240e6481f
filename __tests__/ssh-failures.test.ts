// The SSH transport when things go wrong or get big: a connection dropped
// mid-job, jobs stopped by a timeout, a 256 MiB artifact, 200 MB of output.
// Against a real OpenSSH sshd on loopback (helpers/sshd.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobExecution } from '../src/core/job.js';
import { jobScript } from '../src/runner/script.js';
import { SshSession } from '../src/transport/ssh/index.js';
import { childrenOf, startSshd, targetFor, type Sshd } from './helpers/sshd.js';

function job(name: string, commands: string[]): JobExecution {
  return { stage: 'test', name, scriptName: `${name}.sh`, script: jobScript(commands), env: [] };
}

function alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {}
}

/** Every descendant of `pid` whose command is sshd. */
function sshdDescendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const k of childrenOf(p)) {
      let comm = '';
      try {
        comm = readFileSync(`/proc/${k}/comm`, 'utf8').trim();
      } catch {}
      if (comm === 'sshd') {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(pid);
  return out;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

let sshd: Sshd;
let tmp: string;
const sessions: SshSession[] = [];
const groups: number[] = [];

async function connect() {
  const s = await SshSession.connect(targetFor(sshd));
  sessions.push(s);
  return s;
}

/** Waits until the job's pid file exists, and returns its process-group id. */
async function pgidOf(s: SshSession, n: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    try {
      const v = Number(readFileSync(path.join(s.dir, `${n}.pid`), 'utf8').trim());
      if (v > 0) {
        groups.push(v);
        return v;
      }
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the job never wrote its pid');
}

beforeAll(async () => {
  sshd = await startSshd();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-ssh-fail-'));
});

afterAll(async () => {
  for (const s of sessions) await s.close();
  for (const g of groups) killGroup(g);
  await sshd?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('stopping and losing jobs', () => {
  it('a connection dropped mid-job ends the job with a clear message, not a hang', async () => {
    const s = await connect();
    let out = '';
    let started!: () => void;
    const isStarted = new Promise<void>((r) => (started = r));
    const p = s.execute(
      job('doomed', ['echo started', 'sleep 300']),
      {
        write: (c) => {
          out += c.toString();
          if (out.includes('started\n')) started();
        },
      },
      new AbortController().signal,
    );
    await isStarted;
    const pg = await pgidOf(s, 1);
    // Kill the sshd processes serving this connection (not the listener): the TCP connection drops.
    const victims = sshdDescendants(sshd.pid);
    expect(victims.length).toBeGreaterThan(0);
    for (const v of victims) process.kill(v, 'SIGKILL');
    const r = await p;
    expect(r.exitCode).toBeNull();
    expect(r.error).toBe('connection to the machine was lost while running job doomed');
    expect(s.isLost).toBe(true);
    // Later calls fail fast too.
    expect((await s.execute(job('after', ['true']), { write() {} }, new AbortController().signal)).error).toMatch(
      /connection to the machine was lost/,
    );
    await s.close();
    killGroup(pg);
  });

  it('a job stopped by its timeout leaves no process behind, even one that ignores SIGTERM', async () => {
    const s = await connect();
    const stop = new AbortController();
    let out = '';
    let started!: () => void;
    const isStarted = new Promise<void>((r) => (started = r));
    const p = s.execute(
      // A background child and a foreground shell that ignores TERM: only the process group kill with KILL ends both.
      job('stubborn', ["trap '' TERM", 'sleep 301 &', 'echo started', 'while :; do sleep 1; done']),
      {
        write: (c) => {
          out += c.toString();
          if (out.includes('started\n')) started();
        },
      },
      stop.signal,
    );
    await isStarted;
    const pg = await pgidOf(s, 1);
    expect(alive(pg)).toBe(true);
    stop.abort('timed_out');
    const r = await p;
    expect(r.exitCode).toBeNull();
    // Processes are reaped by then or moments later; poll briefly rather than race.
    for (let i = 0; i < 40 && alive(pg); i++) await new Promise((res) => setTimeout(res, 100));
    expect(alive(pg)).toBe(false);
    // The connection stays usable for the artifacts and the next job.
    expect((await s.exec('echo still here')).stdout.toString()).toBe('still here\n');
  });

  it('a job stopped right as it starts is still killed', async () => {
    const s = await connect();
    const stop = new AbortController();
    const p = s.execute(job('early', ['sleep 302']), { write() {} }, stop.signal);
    setImmediate(() => stop.abort('killed'));
    const r = await p;
    expect(r.exitCode).toBeNull();
    let pg = 0;
    try {
      pg = Number(readFileSync(path.join(s.dir, '1.pid'), 'utf8').trim());
    } catch {}
    if (pg > 0) {
      groups.push(pg);
      for (let i = 0; i < 40 && alive(pg); i++) await new Promise((res) => setTimeout(res, 100));
      expect(alive(pg)).toBe(false);
    }
    expect(execFileSync('sh', ['-c', 'pgrep -x sleep -a || true'], { encoding: 'utf8' })).not.toMatch(/sleep 302/);
  });

  it('a script killed by a signal is reported as such', async () => {
    const s = await connect();
    const r = await s.execute(job('sig', ['kill -KILL $$']), { write() {} }, new AbortController().signal);
    expect(r.exitCode).toBeNull();
    expect(r.error).toBe("the job's script was killed by SIGKILL");
  });

  it('close() while a job still runs stops that job too', async () => {
    const s = await connect();
    const p = s.execute(job('abandoned', ['sleep 305']), { write() {} }, new AbortController().signal);
    const pg = await pgidOf(s, 1);
    await s.close();
    const r = await p;
    expect(r.exitCode).toBeNull();
    for (let i = 0; i < 40 && alive(pg); i++) await new Promise((res) => setTimeout(res, 100));
    expect(alive(pg)).toBe(false);
  });

  it('close() removes the private folder', async () => {
    const s = await connect();
    await s.execute(job('x', ['true']), { write() {} }, new AbortController().signal);
    expect(statSync(s.dir).isDirectory()).toBe(true);
    await s.close();
    expect(() => statSync(s.dir)).toThrow();
  });
});

describe('big data', () => {
  it('downloads a 256 MiB artifact exactly, streamed to disk without holding it in memory', async () => {
    const s = await connect();
    const r = await s.execute(
      job('big', ['head -c 268435456 /dev/urandom > big.bin', 'sha256sum big.bin > big.sum']),
      { write() {} },
      new AbortController().signal,
    );
    expect(r.exitCode).toBe(0);
    const dst = path.join(tmp, 'big.bin');
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
    try {
      await s.download('big.bin', dst);
    } finally {
      clearInterval(sampler);
    }
    expect(statSync(dst).size).toBe(268435456);
    expect(await sha256(dst)).toBe(readFileSync(path.join(sshd.home, 'big.sum'), 'utf8').split(' ')[0]);
    expect(peak - before).toBeLessThan(128 * 1024 * 1024);
    rmSync(dst);
    rmSync(path.join(sshd.home, 'big.bin'));
  });

  it('streams 200 MB of job output without buffering it', async () => {
    const s = await connect();
    let bytes = 0;
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
    try {
      const r = await s.execute(
        job('loud', ['head -c 200000000 /dev/zero']),
        { write: (c) => (bytes += c.length) },
        new AbortController().signal,
      );
      expect(r.exitCode).toBe(0);
    } finally {
      clearInterval(sampler);
    }
    // The set -x trace line comes first; then exactly the output.
    expect(bytes).toBeGreaterThanOrEqual(200_000_000);
    expect(bytes).toBeLessThan(200_000_100);
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  });
});
