// One SSH connection per build: jobs, objects and artifacts all go over it.
// Each job's script and env file live in a private folder made at connect
// time (mktemp -d), never in the home folder where they could clobber a file.
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { pauseWhile, type ExecResult, type JobExecution, type OutputSink } from '../../drivers/driver.js';
import { envFile, shellQuote } from '../../runner/script.js';
import { globFiles } from '../../util/glob.js';
import { openClient, openExec, type SshTarget } from './connect.js';
import { getFile, putFile, sftpGlobFs, writeFile } from './sftp.js';

/** After SIGTERM to a stopped job's process group, how long before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After SIGKILL, how long we still wait for the channel before closing it ourselves. */
const KILL_WAIT_MS = 3000;

// Runs one job: $1 env file, $2 script, $3 file for the job's process-group id.
// sshd makes each command a session (and group) leader; if some server does
// not, setsid makes one, so that a stop reaches everything the job started.
const RUNNER = `cd || exit 125
. "$1" || exit 125
if kill -0 -$$ 2>/dev/null; then
  echo $$ >"$3"
  exec /bin/sh "$2"
fi
exec setsid -w /bin/sh -c 'echo $$ >"$0"; exec /bin/sh "$1"' "$3" "$2"
`;

/** Makes the private folder and writes the runner into it; prints the folder. */
const SETUP = `exec /bin/sh -c 'd=$(mktemp -d "\${TMPDIR:-/tmp}/djinn.XXXXXXXXXX") && cat >"$d/run.sh" && echo "$d"'`;

export interface ExecOptions {
  stdin?: NodeJS.ReadableStream;
  signal?: AbortSignal;
}

export interface ExecOutput {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

export class SshSession {
  /** The per-build folder in the guest (absolute). */
  readonly dir: string;
  private lost = false;
  private closing = false;
  private readonly onLost = new Set<() => void>();
  private envWritten: string | undefined;
  private jobCount = 0;
  private execCount = 0;
  /** Pid files of jobs still running, so that close() can stop them. */
  private readonly running = new Set<string>();

  private constructor(
    private readonly client: Client,
    private readonly sftp: SFTPWrapper,
    dir: string,
    readonly target: SshTarget,
  ) {
    this.dir = dir;
    const lose = () => {
      if (this.lost) return;
      this.lost = true;
      for (const f of [...this.onLost]) f();
    };
    client.on('close', lose);
    client.on('end', lose);
    client.on('error', lose);
  }

  /** Connects (waiting for the banner until the deadline), logs in and makes the private folder. */
  static async connect(target: SshTarget): Promise<SshSession> {
    const client = await openClient(target);
    try {
      if (target.signal?.aborted) throw new Error('aborted');
      const [sftp, setup] = await Promise.all([
        new Promise<SFTPWrapper>((resolve, reject) =>
          client.sftp((err, s) =>
            err
              ? reject(
                  new Error(`cannot start SFTP (${err.message}): make sure the Subsystem sftp line in the machine's sshd_config is right`),
                )
              : resolve(s),
          ),
        ),
        execCollect(client, SETUP, { stdin: RUNNER }),
      ]);
      const dir = setup.stdout.toString().trim();
      if (setup.code !== 0 || !dir.startsWith('/')) {
        throw new Error(
          `cannot make a private folder in the machine with mktemp -d: ${setup.stderr.toString().trim() || `exit status ${setup.code}`}`,
        );
      }
      target.reporter.info(`Established SSH connection to machine as ${target.user}...`);
      return new SshSession(client, sftp, dir, target);
    } catch (err) {
      client.end();
      throw err;
    }
  }

  private lostMessage(job: string): string {
    return `connection to the machine was lost while running job ${job}`;
  }

  /** Runs one job's script, streaming its output to `sink` as it arrives. */
  async execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    if (this.lost) return { exitCode: null, error: this.lostMessage(job.name) };
    if (signal.aborted) return { exitCode: null, error: 'stopped before it started' };
    const n = ++this.jobCount;
    const script = `${this.dir}/${job.scriptName}`;
    const env = envFile(job.env);
    const envPath = `${this.dir}/env`;
    const pidFile = `${this.dir}/${n}.pid`;
    try {
      const writes = [writeFile(this.sftp, script, job.script, 0o700)];
      if (env !== this.envWritten) writes.push(writeFile(this.sftp, envPath, env, 0o600));
      await Promise.all(writes);
      this.envWritten = env;
    } catch (err) {
      if (this.lost) return { exitCode: null, error: this.lostMessage(job.name) };
      return { exitCode: null, error: `cannot start job ${job.name}: ${(err as Error).message}` };
    }
    const cmd = `exec /bin/sh ${[`${this.dir}/run.sh`, envPath, script, pidFile].map(shellQuote).join(' ')}`;

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
      // Stopped while the script was being written: do not start it at all.
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
    const body = `i=0; while [ ! -s "$1" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; pg=$(cat "$1" 2>/dev/null) || exit 0; kill -${sig} -$pg 2>/dev/null; pkill -${sig} -s $pg 2>/dev/null; exit 0`;
    const cmd = `exec /bin/sh -c ${shellQuote(body)} sh ${shellQuote(pidFile)}`;
    await execCollect(this.client, cmd).catch(() => {});
  }

  /** Copies a host file into the machine (relative to home), parent folders created, then chmod `mode`. */
  upload(localPath: string, guestPath: string, mode: number): Promise<void> {
    return putFile(this.sftp, localPath, guestPath, mode);
  }

  /** Regular files matching a Go path.Match pattern (relative to home), sorted. */
  glob(pattern: string): Promise<string[]> {
    return globFiles(pattern, sftpGlobFs(this.sftp));
  }

  /** Streams a guest file to `localPath`. */
  download(guestPath: string, localPath: string): Promise<void> {
    return getFile(this.sftp, guestPath, localPath);
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
    const wrapped = `exec /bin/sh -c ${shellQuote('echo $$ >"$0"; exec /bin/sh -c "$1"')} ${shellQuote(pidFile)} ${shellQuote(command)}`;
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
    return execCollect(this.client, wrapped, { stdin: opts.stdin, signal: giveUp.signal }).finally(() => {
      outer.removeEventListener('abort', onAbort);
      for (const t of timers) clearTimeout(t);
      this.running.delete(pidFile);
    });
  }

  /** The SFTP channel, for callers that need more than the methods above. */
  get sftpChannel(): SFTPWrapper {
    return this.sftp;
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

/** exec with stdout/stderr collected; `stdin` may be a string or a stream (e.g. a tar). */
export async function execCollect(
  client: Client,
  command: string,
  opts: { stdin?: NodeJS.ReadableStream | string; signal?: AbortSignal } = {},
): Promise<ExecOutput> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let code: number | null = null;
  let closed!: () => void;
  const isClosed = new Promise<void>((r) => (closed = r));
  const ch = await openExec(client, command, (c) => {
    c.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.on('exit', (n: number | null) => (code = typeof n === 'number' ? n : null));
    c.on('close', () => closed());
  });
  return new Promise((resolve, reject) => {
    // On abort, do not wait for the server's close: it may wait for the command first.
    const onAbort = () => {
      ch.close();
      resolve({ code: null, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // A command that exits before reading all its stdin: the writes that fail then are expected.
    ch.on('error', () => {});
    void isClosed.then(() => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (typeof opts.stdin === 'object') opts.stdin.unpipe?.(ch);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    if (typeof opts.stdin === 'string') ch.end(opts.stdin);
    else if (opts.stdin) {
      opts.stdin.on('error', (e: Error) => {
        ch.close();
        reject(e);
      });
      opts.stdin.pipe(ch);
    } else ch.end();
  });
}
