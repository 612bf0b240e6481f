// The `os` driver: runs each job's script with /bin/sh on this host, in a
// fresh working folder per build. Unlike Djinn's (which splits commands on
// spaces and runs them without a shell) ours uses a shell, like every other driver.
import { spawn } from 'node:child_process';
import { copyFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pauseWhile, type CreateContext, type Driver, type ExecResult, type JobExecution, type OutputSink } from '../driver.js';

import { globFiles } from '../../util/glob.js';
import { hostGlobFs } from '../../util/fs-type.js';

const KILL_GRACE_MS = 2000;
/** How long to wait for output still in the pipes after the script exits. */
const DRAIN_MS = 250;

export class OsDriver implements Driver {
  readonly type = 'os';
  private workdir = '';
  private scripts = '';
  /** Process groups of every job run, ended in destroy(). */
  private readonly groups = new Set<number>();

  async create(ctx: CreateContext): Promise<void> {
    this.workdir = await mkdtemp(path.join(os.tmpdir(), 'djinn-os-'));
    this.scripts = await mkdtemp(path.join(os.tmpdir(), 'djinn-os-scripts-'));
    ctx.reporter.info(`Created working folder ${this.workdir}...`);
  }

  private resolve(p: string): string {
    return path.resolve(this.workdir, p);
  }

  async execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    const script = path.join(this.scripts, job.scriptName);
    await writeFile(script, job.script, { mode: 0o700 });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: this.workdir,
      LANG: 'C.UTF-8',
    };
    for (const e of job.env) env[e.key] = e.value;
    return new Promise<ExecResult>((resolve) => {
      // detached: the script leads its own process group, so a stop reaches everything it started.
      const child = spawn('/bin/sh', [script], { cwd: this.workdir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid) this.groups.add(child.pid);
      child.stdout.on('data', (c: Buffer) => pauseWhile(child.stdout, sink.write(c)));
      child.stderr.on('data', (c: Buffer) => pauseWhile(child.stderr, sink.write(c)));
      let killTimer: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;
      let result: ExecResult | undefined;
      const stop = () => {
        killGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
      };
      const finish = () => {
        if (!result) return;
        signal.removeEventListener('abort', stop);
        if (killTimer) clearTimeout(killTimer);
        if (drainTimer) clearTimeout(drainTimer);
        // A background process may still hold the pipes: stop listening, as a closed SSH session would.
        child.stdout.destroy();
        child.stderr.destroy();
        resolve(result);
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
      child.on('error', (err) => {
        result = { exitCode: null, error: `cannot run /bin/sh: ${err.message}` };
        finish();
      });
      child.on('exit', (code, sig) => {
        result = code !== null ? { exitCode: code } : { exitCode: null, error: `the job's script was killed by ${sig}` };
        // A stopped job leaves nothing behind. A job that ended by itself may leave background
        // processes for later jobs (state persists as in a machine); destroy() ends them.
        if (signal.aborted) killGroup(child.pid, 'SIGKILL');
        // Let output already in the pipes arrive; don't wait for processes that keep them open.
        drainTimer = setTimeout(finish, DRAIN_MS);
      });
      child.on('close', finish);
    });
  }

  async upload(localPath: string, guestPath: string, mode: number): Promise<void> {
    const dst = this.resolve(guestPath);
    await mkdir(path.dirname(dst), { recursive: true });
    await copyFile(localPath, dst);
    await chmod(dst, mode);
  }

  glob(pattern: string): Promise<string[]> {
    return globFiles(
      pattern,
      hostGlobFs((p) => this.resolve(p)),
    );
  }

  async download(guestPath: string, localPath: string): Promise<void> {
    await copyFile(this.resolve(guestPath), localPath);
  }

  async destroy(): Promise<void> {
    for (const pid of this.groups) killGroup(pid, 'SIGKILL');
    this.groups.clear();
    for (const d of [this.workdir, this.scripts]) if (d) await rm(d, { recursive: true, force: true }).catch(() => {});
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}
