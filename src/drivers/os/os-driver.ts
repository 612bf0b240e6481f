// The `os` driver: runs each job's script with /bin/sh on this host, in a
// fresh working folder per build. Unlike Djinn's (which splits commands on
// spaces and runs them without a shell) ours uses a shell, like every other driver.
import { spawn } from 'node:child_process';
import { copyFile, chmod, mkdir, mkdtemp, realpath, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pauseWhile, type ExecResult, type JobExecution, type OutputSink } from '../../core/job.js';
import { type CreateContext, type Driver } from '../driver.js';

import { globFiles } from '../../util/glob.js';
import { hostGlobFs } from '../../util/fs-type.js';
import { isInside } from '../../util/paths.js';
import { removeTree } from '../../util/remove-tree.js';
import { ProcessTracker } from './process-tracker.js';

const KILL_GRACE_MS = 2000;
/** How long to wait for output still in the pipes after the script exits. */
const DRAIN_MS = 250;

export class OsDriver implements Driver {
  readonly type = 'os';
  private workdir = '';
  private scripts = '';
  /** Process groups of every job run, ended in destroy(). */
  private readonly groups = new Set<number>();

  /** Every process the build starts, wherever it goes (setsid, double fork): ended in destroy(). */
  private readonly tracker = new ProcessTracker();
  private creating: Promise<void> | undefined;

  create(ctx: CreateContext): Promise<void> {
    // Kept so that destroy() after an early stop (-timeout 1ms) waits for the folders and removes them.
    this.creating = (async () => {
      this.workdir = await mkdtemp(path.join(os.tmpdir(), 'djinn-os-'));
      this.scripts = await mkdtemp(path.join(os.tmpdir(), 'djinn-os-scripts-'));
      await this.tracker.start();
    })();
    return this.creating.then(() => ctx.reporter.info(`Created working folder ${this.workdir}...`));
  }

  private resolve(p: string): string {
    return path.resolve(this.workdir, p);
  }

  /** A path the manifest names, refused when it leads out of the working folder (the host's own files). */
  private inside(p: string, what: string): string {
    const full = this.resolve(p);
    if (!isInside(this.workdir, full) || full === this.workdir) {
      throw new Error(`${what} "${p}" is outside the build's working folder; the os driver only writes inside it`);
    }
    return full;
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
    const tooBig = envTooLarge(env);
    if (tooBig) return { exitCode: null, error: tooBig };
    Object.assign(env, this.tracker.env());
    return new Promise<ExecResult>((resolve) => {
      // detached: the script leads its own process group, so a stop reaches everything it started.
      const [cmd, args] = this.tracker.command(script);
      const child = spawn(cmd, args, { cwd: this.workdir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
        const big = (err as NodeJS.ErrnoException).code === 'E2BIG';
        result = {
          exitCode: null,
          error: big
            ? `the job's environment is too large for this host (${envBytes(env)} bytes in total)`
            : `cannot run /bin/sh: ${err.message}`,
        };
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
    const dst = this.inside(guestPath, 'destination');
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

  /** Only regular files; a symlink only when it leads to one inside the working folder (never the host's /etc/shadow). */
  async download(guestPath: string, localPath: string): Promise<void> {
    const full = this.resolve(guestPath);
    const real = await realpath(full);
    const root = await realpath(this.workdir);
    if (!isInside(root, real))
      throw new Error(`${guestPath} is a symbolic link to ${real}, outside the build's working folder; not collected`);
    if (!(await stat(real)).isFile()) throw new Error(`${guestPath} is not a regular file; not collected`);
    await copyFile(real, localPath);
  }

  async destroy(): Promise<void> {
    await this.creating?.catch(() => {});
    for (const pid of this.groups) killGroup(pid, 'SIGKILL');
    this.groups.clear();
    await this.tracker.endAll();
    for (const d of [this.workdir, this.scripts]) await removeTree(d);
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

/** Linux refuses one environment string over 128 KiB (MAX_ARG_STRLEN), whatever the total. */
const MAX_ENV_STRING = 128 * 1024;

function envBytes(env: Record<string, string>): number {
  return Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
}

/** Why this environment cannot be handed to a process, naming the variable; undefined when it can. */
function envTooLarge(env: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(env)) {
    const bytes = Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
    if (bytes > MAX_ENV_STRING) {
      return (
        `the variable ${k} is ${bytes} bytes; a single environment variable can hold at most ${MAX_ENV_STRING} bytes ` +
        `on this host (pass large data as an object instead)`
      );
    }
  }
  return undefined;
}
