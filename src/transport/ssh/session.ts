// One SSH connection per build: jobs, objects and artifacts all go over it.
// Each job is one exec: its script (env file first) goes on the command line up
// to INLINE_SCRIPT_MAX, else on the channel's stdin into a private folder
// (/tmp/djinn.<random>, mode 0700, made by the first command that needs it),
// never in the home folder where it could clobber a file. Under software emulation every channel costs the guest
// an sshd fork, so the first job's output waits on nothing else: the SFTP
// channel (objects, artifacts) opens on first use.
import { randomBytes } from 'node:crypto';
import { stat as statLocal } from 'node:fs/promises';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { pauseWhile, type ExecResult, type JobExecution, type OutputSink } from '../../core/job.js';
import { envFile, shellQuote } from '../../core/shell.js';
import { globFiles } from '../../util/glob.js';
import { openClient, openExec, type SshTarget } from './connect.js';
import { execCollect, type ExecOutput } from './exec.js';
import { BULK_MIN_BYTES, catDownload, catUpload } from './bulk.js';
import { getFile, keepExecBits, putFile, sftpGlobFs, stat } from './sftp.js';

/**
 * Scripts up to this size travel on the command line. Quoting can grow them 4x
 * and Linux caps one argument (the whole command, for the login shell) at 128 KiB.
 */
const INLINE_SCRIPT_MAX = 16 * 1024;
/** After SIGTERM to a stopped job's process group, how long before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After SIGKILL, how long we still wait for the channel before closing it ourselves. */
const KILL_WAIT_MS = 3000;

/**
 * Makes the private folder "$d" unless it exists, and checks that it is a real
 * folder of ours (the name is random, but be sure). Shell builtins only once
 * the folder exists: each exec of a program is slow under emulation.
 */
const ENSURE_DIR = `[ -d "$d" ] || mkdir -m 700 "$d" 2>/dev/null
if [ ! -d "$d" ] || [ -L "$d" ] || [ ! -O "$d" ]; then echo "djinn: cannot make the private folder $d" >&2; exit 125; fi
`;

// Runs one job: $1 the private folder, $2 the script's name, $3 the name of
// the file for the job's process-group id, $4 the script; without $4 the
// script comes on stdin (a big one: a command line has a size limit). The job
// itself reads /dev/null. sshd makes each command a session (and group)
// leader; if some server does not, setsid makes one, so that a stop reaches
// everything the job started.
const RUNNER = `d=$1
umask 077
${ENSURE_DIR}if [ $# -ge 4 ]; then printf '%s' "$4" >"$d/$2" || exit 125; else cat >"$d/$2" || exit 125; fi
cd || exit 125
if kill -0 -$$ 2>/dev/null; then
  echo $$ >"$d/$3"
  exec /bin/sh "$d/$2" </dev/null
fi
exec setsid -w /bin/sh -c 'echo $$ >"$0"; exec /bin/sh "$1" </dev/null' "$d/$3" "$d/$2"
`;

/** Runs $1 (a helper command) with its process-group id in the file $0 (in the private folder). */
const HELPER = `d=\${0%/*}
umask 077
${ENSURE_DIR}echo $$ >"$0"
exec /bin/sh -c "$1"
`;

export interface ExecOptions {
  stdin?: NodeJS.ReadableStream;
  /** Where stdout goes instead of memory (a big download). */
  stdout?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

export class SshSession {
  /** The per-build folder in the guest (absolute); made by the first job. */
  readonly dir = `/tmp/djinn.${randomBytes(12).toString('hex')}`;
  private lost = false;
  private closing = false;
  private readonly onLost = new Set<() => void>();
  private jobCount = 0;
  private execCount = 0;
  private sftpOpening?: Promise<SFTPWrapper>;
  /** Pid files of jobs still running, so that close() can stop them. */
  private readonly running = new Set<string>();

  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {
    const lose = () => {
      if (this.lost) return;
      this.lost = true;
      for (const f of [...this.onLost]) f();
    };
    client.on('close', lose);
    client.on('end', lose);
    client.on('error', lose);
  }

  /** Connects (waiting for the banner until the deadline) and logs in. */
  static async connect(target: SshTarget): Promise<SshSession> {
    const client = await openClient(target);
    if (target.signal?.aborted) {
      client.end();
      throw new Error('aborted');
    }
    target.reporter.info(`Established SSH connection to machine as ${target.user}...`);
    return new SshSession(client, target);
  }

  /** The build's SFTP channel, opened on first use. */
  private sftp(): Promise<SFTPWrapper> {
    this.sftpOpening ??= new Promise<SFTPWrapper>((resolve, reject) =>
      this.client.sftp((err, s) =>
        err
          ? reject(new Error(`cannot start SFTP (${err.message}): make sure the Subsystem sftp line in the machine's sshd_config is right`))
          : resolve(s),
      ),
    );
    return this.sftpOpening;
  }

  private lostMessage(job: string): string {
    return `connection to the machine was lost while running job ${job}`;
  }

  /** Runs one job's script, streaming its output to `sink` as it arrives. */
  async execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    if (this.lost) return { exitCode: null, error: this.lostMessage(job.name) };
    if (signal.aborted) return { exitCode: null, error: 'stopped before it started' };
    const n = ++this.jobCount;
    const pidFile = `${this.dir}/${n}.pid`;
    const script = `${envFile(job.env)}${job.script}`;
    // A small script goes on the command line and the shell's printf writes it: one program fewer
    // to start in the guest (cat) than reading it from stdin, which counts under emulation.
    const inline = Buffer.byteLength(script) <= INLINE_SCRIPT_MAX && !script.includes('\0');
    const args = [this.dir, job.scriptName, `${n}.pid`, ...(inline ? [script] : [])];
    const cmd = `exec /bin/sh -c ${shellQuote(RUNNER)} sh ${args.map(shellQuote).join(' ')}`;

    return new Promise<ExecResult>((resolve) => {
      let code: number | null | undefined;
      let sig: string | undefined;
      let stopped = false;
      let finished = false;
      let channel: ClientChannel | undefined;
      const timers: NodeJS.Timeout[] = [];
      const done = (r: ExecResult) => {
        if (finished) return;
        finished = true;
        this.running.delete(pidFile);
        for (const t of timers) clearTimeout(t);
        signal.removeEventListener('abort', stop);
        this.onLost.delete(onLost);
        resolve(r);
      };
      const onLost = () => done({ exitCode: null, error: this.lostMessage(job.name) });
      // Stop: TERM the job's process group, KILL it after a grace period, then give up on the channel.
      const stop = () => {
        stopped = true;
        void this.signalGroup(pidFile, 15);
        timers.push(
          setTimeout(() => {
            void this.signalGroup(pidFile, 9);
            timers.push(
              setTimeout(() => {
                channel?.close();
                done({ exitCode: null, error: 'stopped' });
              }, KILL_WAIT_MS),
            );
          }, KILL_GRACE_MS),
        );
      };
      const attach = (ch: ClientChannel) => {
        channel = ch;
        ch.end(inline ? undefined : script);
        ch.on('data', (c: Buffer) => pauseWhile(ch, sink.write(c)));
        ch.stderr.on('data', (c: Buffer) => pauseWhile(ch.stderr, sink.write(c)));
        ch.on('exit', (c: number | null, s?: string) => {
          code = c;
          sig = s ?? undefined;
        });
        ch.on('close', () => {
          if (code !== undefined && code !== null) done({ exitCode: code });
          else if (sig) done({ exitCode: null, error: `the job's script was killed by ${sig.startsWith('SIG') ? sig : `SIG${sig}`}` });
          else if (stopped) done({ exitCode: null, error: 'stopped' });
          else done({ exitCode: null, error: this.lostMessage(job.name) });
        });
      };
      // Stopped before it could start: do not start it at all.
      if (signal.aborted) return done({ exitCode: null, error: 'stopped before it started' });
      this.onLost.add(onLost);
      signal.addEventListener('abort', stop, { once: true });
      if (this.lost) return onLost();
      this.running.add(pidFile);
      openExec(this.client, cmd, attach).catch((err: Error) => {
        done(
          this.lost
            ? { exitCode: null, error: this.lostMessage(job.name) }
            : { exitCode: null, error: `cannot start job ${job.name}: ${err.message}` },
        );
      });
    });
  }

  /** Signals every process of a job: its process group and anything left in its session. */
  private async signalGroup(pidFile: string, sig: 9 | 15): Promise<void> {
    if (this.lost) return;
    // The job may not have written its pid yet when it is stopped right after starting.
    const body =
      `i=0; while [ ! -s "$1" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; pg=$(cat "$1" 2>/dev/null) || exit 0; ` +
      `kill -${sig} -$pg 2>/dev/null; pkill -${sig} -s $pg 2>/dev/null; exit 0`;
    const cmd = `exec /bin/sh -c ${shellQuote(body)} sh ${shellQuote(pidFile)}`;
    await execCollect(this.client, cmd).catch(() => {});
  }

  /** Copies a host file into the machine (relative to home), parent folders created, then chmod `mode`. */
  async upload(localPath: string, guestPath: string, mode: number): Promise<void> {
    const big = (await statLocal(localPath)).size >= BULK_MIN_BYTES;
    if (!(big && (await catUpload(this.client, localPath, guestPath, mode)))) await putFile(await this.sftp(), localPath, guestPath, mode);
  }

  /** Regular files matching a Go path.Match pattern (relative to home), sorted. */
  async glob(pattern: string): Promise<string[]> {
    return globFiles(pattern, sftpGlobFs(await this.sftp()));
  }

  /** Streams a guest file to `localPath`. */
  async download(guestPath: string, localPath: string): Promise<void> {
    const sftp = await this.sftp();
    const st = await stat(sftp, guestPath);
    const big = st.size >= BULK_MIN_BYTES;
    if (!(big && (await catDownload(this.client, guestPath, localPath)))) await getFile(sftp, guestPath, localPath);
    await keepExecBits(localPath, st.mode);
  }

  /** A small helper command; output is collected in memory, so keep it small. */
  exec(command: string, opts: ExecOptions = {}): Promise<ExecOutput> {
    if (this.lost) return Promise.reject(new Error('the connection to the machine was lost'));
    const outer = opts.signal;
    if (!outer) return execCollect(this.client, command, opts);
    if (outer.aborted) return Promise.resolve({ code: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });
    // Closing the channel does not stop the command (sshd waits for it), so record its
    // process group as for jobs, and on abort TERM it, KILL it, then give up on the channel.
    const pidFile = `${this.dir}/exec-${++this.execCount}.pid`;
    const wrapped = `exec /bin/sh -c ${shellQuote(HELPER)} ${shellQuote(pidFile)} ${shellQuote(command)}`;
    const giveUp = new AbortController();
    const timers: NodeJS.Timeout[] = [];
    const onAbort = () => {
      void this.signalGroup(pidFile, 15);
      timers.push(
        setTimeout(() => {
          void this.signalGroup(pidFile, 9);
          timers.push(setTimeout(() => giveUp.abort(), KILL_WAIT_MS));
        }, KILL_GRACE_MS),
      );
    };
    outer.addEventListener('abort', onAbort, { once: true });
    this.running.add(pidFile);
    return execCollect(this.client, wrapped, { stdin: opts.stdin, stdout: opts.stdout, signal: giveUp.signal }).finally(() => {
      outer.removeEventListener('abort', onAbort);
      for (const t of timers) clearTimeout(t);
      this.running.delete(pidFile);
    });
  }

  get isLost(): boolean {
    return this.lost;
  }

  /** Removes the private folder, then ends the connection. Never throws. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.lost) {
      // A job still running when the build ends (e.g. its execute was abandoned) must not outlive us.
      await Promise.all([...this.running].map((f) => withTimeout(this.signalGroup(f, 9), 5000).catch(() => {})));
      await withTimeout(execCollect(this.client, `rm -rf ${shellQuote(this.dir)}`), 5000).catch(() => {});
    }
    await new Promise<void>((resolve) => {
      if (this.lost) {
        this.client.destroy();
        return resolve();
      }
      const t = setTimeout(() => {
        this.client.destroy();
        resolve();
      }, 2000);
      this.client.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.client.end();
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}
