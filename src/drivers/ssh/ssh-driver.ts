// The `ssh` driver: runs the build on a machine that already exists, reached
// at the manifest's `address` (HOST:PORT, port 22 by default). No boot and no
// teardown beyond removing our private folder. (Djinn's own ssh driver could
// never connect: it validated `address` but read `addr`.)
import { readFile } from 'node:fs/promises';
import { UsageError, DriverError } from '../../core/errors.js';
import type { DriverSpec } from '../../manifest/types.js';
import { SshSession } from '../../transport/ssh/index.js';
import type { CreateContext, Driver } from '../driver.js';
import type { ExecResult, JobExecution, OutputSink } from '../../core/job.js';
import type { DriverSettings } from '../../config/settings.js';

export const DEFAULT_SSH_PORT = 22;

/** `host`, `host:port`, `[v6]` or `[v6]:port`; null when it is none of these. */
export function parseAddress(address: string): { host: string; port: number } | null {
  const a = address.trim();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(a) ?? /^([^:\s[\]]+)(?::(\d+))?$/.exec(a);
  if (!m) return null;
  const port = m[2] === undefined ? DEFAULT_SSH_PORT : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1], port };
}

export class SshDriver implements Driver {
  readonly type = 'ssh';
  private readonly host: string;
  private readonly port: number;
  private session: SshSession | undefined;
  /** A connect still under way: destroy() must wait for it, or a late session would stay open. */
  private connecting: Promise<SshSession> | undefined;

  constructor(
    spec: DriverSpec,
    private readonly settings: DriverSettings,
  ) {
    const address = spec.options.address ?? '';
    const parsed = parseAddress(address);
    if (!parsed)
      throw new UsageError(`expected HOST or HOST:PORT (e.g. build.example.com:22), found "${address}".`, spec.position, 'driver.address');
    this.host = parsed.host;
    this.port = parsed.port;
  }

  async create(ctx: CreateContext): Promise<void> {
    const s = this.settings;
    let privateKey: Buffer | undefined;
    if (s.ssh.keyFile) {
      try {
        privateKey = await readFile(s.ssh.keyFile);
      } catch (err) {
        throw new DriverError(
          `cannot read the SSH key file ${s.ssh.keyFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}.`,
        );
      }
    }
    const user = s.ssh.user;
    ctx.reporter.info(`Connecting to ${this.host}:${this.port} as ${user}...`);
    this.connecting = SshSession.connect({
      host: this.host,
      port: this.port,
      user,
      privateKey,
      password: s.ssh.password,
      deadline: Date.now() + s.ssh.connectTimeoutMs,
      reporter: ctx.reporter,
      signal: ctx.signal,
    });
    try {
      this.session = await this.connecting;
    } finally {
      this.connecting = undefined;
    }
  }

  private live(): SshSession {
    if (!this.session) throw new DriverError('the ssh driver is not connected.');
    return this.session;
  }

  execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    return this.live().execute(job, sink, signal);
  }

  upload(localPath: string, guestPath: string, mode: number): Promise<void> {
    return this.live().upload(localPath, guestPath, mode);
  }

  glob(pattern: string): Promise<string[]> {
    return this.live().glob(pattern);
  }

  download(guestPath: string, localPath: string): Promise<void> {
    return this.live().download(guestPath, localPath);
  }

  /** Streams stdin into a command in the machine (the action's workspace copy: tar over the build's connection). */
  exec(
    command: string,
    opts?: { stdin?: NodeJS.ReadableStream; signal?: AbortSignal },
  ): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }> {
    return this.live().exec(command, opts);
  }

  async destroy(): Promise<void> {
    if (this.connecting) this.session = await this.connecting.catch(() => undefined);
    const s = this.session;
    this.session = undefined;
    await s?.close();
  }

  facts(): Record<string, string | number | boolean> {
    return { driver: 'ssh', address: `${this.host}:${this.port}` };
  }
}
