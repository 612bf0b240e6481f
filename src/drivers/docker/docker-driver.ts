// The `docker` driver, Djinn's with its bugs fixed: a named volume mounted
// at the manifest's `workspace` carries the build's state from job to job;
// every job runs its script in a new container of `image`, with the
// manifest's env only. A small "files" container, running for the whole
// build with the volume mounted, moves objects and artifacts through the
// engine's archive API and lists folders for artifact globs.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { UsageError, DriverError } from '../../core/errors.js';
import type { DriverSpec } from '../../manifest/types.js';
import type { Reporter } from '../../core/reporter.js';
import { globFiles, type EntryType, type GlobFs } from '../../util/glob.js';
import type { CreateContext, Driver } from '../driver.js';
import type { ExecResult, JobExecution, OutputSink } from '../../core/job.js';
import type { DriverSettings } from '../../config/settings.js';
import { connect, ensureImage, errorText, statusOf, type Engine } from './engine.js';
import { extractFirst, packFile, packText, type FirstEntry } from './tar.js';
import { downloadArchiveEntry } from './archive-download.js';
import { sleep } from '../../util/sleep.js';

/** Every container and volume of ours carries this label, with the build's id as its value. */
export const BUILD_LABEL = 'io.djinn-ci.build';
/** Where each job's script goes inside its own container (not in the workspace, which is the user's). */
const SCRIPT_DIR = '/.djinn';
/** Seconds a stopped job gets between SIGTERM and SIGKILL. */
const STOP_GRACE_S = 2;
const MAX_SYMLINKS = 16;
const CREATE_WAIT_MS = 30_000;

// Lists one folder for the glob: "<f|d|o> <name>\0" per entry, types following symlinks. Plain POSIX sh.
const LIST_SCRIPT = `cd -- "$1" 2>/dev/null || exit 3
for f in * .[!.]* ..?*; do
  if [ -f "$f" ]; then t=f; elif [ -d "$f" ]; then t=d; elif [ -e "$f" ] || [ -L "$f" ]; then t=o; else continue; fi
  printf '%s %s\\0' "$t" "$f"
done`;
const STAT_SCRIPT = `if [ -f "$1" ]; then echo f; elif [ -d "$1" ]; then echo d; elif [ -e "$1" ]; then echo o; else echo none; fi`;

export class DockerDriver implements Driver {
  readonly type = 'docker';
  private readonly image: string;
  private readonly workspace: string;
  private readonly buildId = randomBytes(6).toString('hex');
  private readonly volume = `djinn-${this.buildId}`;
  private engine?: Engine;
  private imageId = '';
  private files?: Docker.Container;
  private reporter?: Reporter;
  private creating?: Promise<void>;
  private destroyed = false;
  private jobCount = 0;

  constructor(
    spec: DriverSpec,
    private readonly settings: DriverSettings,
  ) {
    this.image = settings.image.name || spec.options.image || '';
    const ws = spec.options.workspace ?? '';
    if (!this.image) throw new UsageError('driver docker requires image.', spec.position, 'driver.image');
    if (!path.posix.isAbsolute(ws))
      throw new UsageError(
        `driver docker: workspace "${ws}" must be an absolute path in the container, e.g. /workspace.`,
        spec.position,
        'driver.workspace',
      );
    this.workspace = path.posix.normalize(ws).replace(/(.)\/+$/, '$1');
    if (this.workspace === '/')
      throw new UsageError(
        'driver docker: workspace cannot be "/": the build\'s volume is mounted there.',
        spec.position,
        'driver.workspace',
      );
  }

  create(ctx: CreateContext): Promise<void> {
    this.reporter = ctx.reporter;
    this.creating = this.setUp(ctx);
    return this.creating;
  }

  private async setUp(ctx: CreateContext): Promise<void> {
    const { reporter, signal } = ctx;
    const engine = await connect(this.settings.docker.host, this.settings.docker.version);
    this.engine = engine;
    reporter.info(`Using docker API version ${engine.apiVersion}...`);
    this.imageId = await ensureImage(engine, this.image, reporter, signal);
    reporter.info(`Using image ${this.image} - ${this.imageId}...`);
    this.checkStillWanted(signal);
    const labels = { [BUILD_LABEL]: this.buildId };
    try {
      await engine.docker.createVolume({ Name: this.volume, Labels: labels });
      this.checkStillWanted(signal);
      this.files = await engine.docker.createContainer({
        name: `${this.volume}-files`,
        Image: this.imageId,
        Entrypoint: ['/bin/sh', '-c', 'while :; do sleep 3600; done'],
        Cmd: [],
        WorkingDir: this.workspace,
        Labels: labels,
        HostConfig: { Mounts: [this.mount()], NetworkMode: 'none' },
      });
      this.checkStillWanted(signal);
      await this.files.start();
    } catch (err) {
      if (err instanceof DriverError) throw err;
      throw new DriverError(`cannot prepare the build's volume and files container from image ${this.image}: ${errorText(err)}`);
    }
  }

  private checkStillWanted(signal: AbortSignal): void {
    if (signal.aborted || this.destroyed) throw new DriverError('the build was stopped while the docker driver was starting.');
  }

  private mount(): Docker.MountSettings {
    return { Type: 'volume', Source: this.volume, Target: this.workspace };
  }

  private get docker(): Docker {
    if (!this.engine) throw new DriverError('the docker driver is not connected.');
    return this.engine.docker;
  }

  async execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    if (signal.aborted) return { exitCode: null, error: 'stopped before it started' };
    const n = ++this.jobCount;
    const container = await this.docker.createContainer({
      name: `${this.volume}-job${n}`,
      Image: this.imageId,
      Entrypoint: ['/bin/sh', `${SCRIPT_DIR}/${job.scriptName}`],
      Cmd: [],
      Env: job.env.map((e) => `${e.key}=${e.value}`),
      WorkingDir: this.workspace,
      Labels: { [BUILD_LABEL]: this.buildId },
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      HostConfig: { Mounts: [this.mount()] },
    });
    try {
      await container.putArchive(packText(`${SCRIPT_DIR.slice(1)}/${job.scriptName}`, job.script, 0o755), { path: '/' });
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      const out = new Writable({
        write(chunk: Buffer, _enc, done) {
          // A pending sink write holds this stream back, and with it the engine's.
          const pending = sink.write(chunk);
          if (pending instanceof Promise) void pending.then(() => done(), done);
          else done();
        },
      });
      this.docker.modem.demuxStream(stream, out, out);
      const ended = new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
      if (signal.aborted) return { exitCode: null, error: 'stopped before it started' };
      let stopped = false;
      const stop = () => {
        stopped = true;
        container.stop({ t: STOP_GRACE_S }).catch(() => container.kill().catch(() => {}));
      };
      signal.addEventListener('abort', stop, { once: true });
      try {
        try {
          await container.start();
        } catch (err) {
          return { exitCode: null, error: `the job's container did not start: ${errorText(err)}` };
        }
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        // The attach stream ends once the container has; don't hang on a lost one.
        await Promise.race([ended, sleep(5000, undefined, { unref: true })]);
        if (stopped) return { exitCode: null, error: "the job's container was stopped" };
        return { exitCode: StatusCode };
      } finally {
        signal.removeEventListener('abort', stop);
      }
    } finally {
      await container.remove({ force: true }).catch(() => {}); // destroy() catches anything left
    }
  }

  /** A guest path as an absolute path in the containers: relative ones are under the workspace. */
  private resolve(guestPath: string): string {
    return path.posix.resolve(this.workspace, guestPath);
  }

  private inWorkspace(p: string): string | undefined {
    const rel = path.posix.relative(this.workspace, p);
    return rel && !rel.startsWith('..') && !path.posix.isAbsolute(rel) ? rel : undefined;
  }

  async upload(localPath: string, guestPath: string, mode: number): Promise<void> {
    const target = this.resolve(guestPath);
    if (!this.inWorkspace(target)) {
      throw new Error(
        `"${guestPath}" is outside the workspace ${this.workspace}: with the docker driver every job runs in a new ` +
          `container, so objects must go under the workspace (relative destinations are)`,
      );
    }
    const dir = path.posix.dirname(target);
    if (dir !== this.workspace) {
      const made = await this.run(['mkdir', '-p', '--', dir]);
      if (made.code !== 0) throw new Error(`cannot make folder ${dir}: ${made.output.toString().trim()}`);
    }
    await this.filesContainer().putArchive(await packFile(localPath, path.posix.basename(target), mode), { path: dir });
  }

  glob(pattern: string): Promise<string[]> {
    // Types learnt from a listing save a round trip per match.
    const known = new Map<string, EntryType>();
    const fs: GlobFs = {
      readdir: async (dir) => {
        const r = await this.run(['/bin/sh', '-c', LIST_SCRIPT, 'sh', dir]);
        if (r.code !== 0) return null;
        const entries: { name: string; type: EntryType }[] = [];
        for (const item of r.output.toString('utf8').split('\0')) {
          if (item.length < 3) continue;
          const type: EntryType = item[0] === 'f' ? 'file' : item[0] === 'd' ? 'dir' : 'other';
          const name = item.slice(2);
          entries.push({ name, type });
          known.set(dir === '.' ? name : dir.endsWith('/') ? dir + name : `${dir}/${name}`, type);
        }
        return entries;
      },
      stat: async (p) => {
        const k = known.get(p);
        if (k) return k;
        const r = await this.run(['/bin/sh', '-c', STAT_SCRIPT, 'sh', p]);
        const t = r.output.toString().trim();
        return t === 'f' ? 'file' : t === 'd' ? 'dir' : t === 'o' ? 'other' : null;
      },
    };
    return globFiles(pattern, fs);
  }

  async download(guestPath: string, localPath: string): Promise<void> {
    let target = this.resolve(guestPath);
    for (let hops = 0; hops <= MAX_SYMLINKS; hops++) {
      const got = (await this.fastDownload(target, localPath)) ?? (await this.dockerodeDownload(target, localPath));
      if (got.type === 'file') return;
      if (got.type === 'other') throw new Error(`${target} is not a regular file (${got.what})`);
      // A symlink: follow it inside the container, as cat would.
      target = path.posix.resolve(path.posix.dirname(target), got.target);
    }
    throw new Error(`too many symbolic links at ${guestPath}`);
  }

  /** The archive read straight off the engine's socket; undefined when it answered anything but 200 or is behind TLS. */
  private fastDownload(target: string, localPath: string): Promise<FirstEntry | undefined> {
    const engine = this.engine;
    if (!engine?.address) return Promise.resolve(undefined);
    return downloadArchiveEntry(engine.address, engine.apiVersion, this.filesContainer().id, target, localPath);
  }

  /** The archive through dockerode, which also turns the engine's errors into messages. */
  private async dockerodeDownload(target: string, localPath: string): Promise<FirstEntry> {
    let archive: NodeJS.ReadableStream;
    try {
      archive = await this.filesContainer().getArchive({ path: target });
    } catch (err) {
      throw new Error(statusOf(err) === 404 ? `no file ${target} in the container` : errorText(err), { cause: err });
    }
    return extractFirst(archive, localPath);
  }

  private filesContainer(): Docker.Container {
    if (!this.files) throw new DriverError('the docker driver has no files container (create failed).');
    return this.files;
  }

  /** Runs a command in the files container; stdout and stderr together. */
  private async run(cmd: string[]): Promise<{ code: number; output: Buffer }> {
    const exec = await this.filesContainer().exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, WorkingDir: this.workspace });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    const collect = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    });
    this.docker.modem.demuxStream(stream, collect, collect);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const info = await exec.inspect();
    return { code: info.ExitCode ?? -1, output: Buffer.concat(chunks) };
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    // A create stuck on an engine that does not answer must not hold the clean-up forever.
    if (this.creating) await Promise.race([this.creating.catch(() => {}), sleep(CREATE_WAIT_MS, undefined, { unref: true })]);
    if (!this.engine) return;
    const docker = this.engine.docker;
    try {
      const left = await docker.listContainers({ all: true, filters: { label: [`${BUILD_LABEL}=${this.buildId}`] } });
      for (const c of left) {
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch((err: unknown) => this.reporter?.warn(`could not remove container ${c.Names?.[0] ?? c.Id}: ${errorText(err)}`));
      }
      await docker
        .getVolume(this.volume)
        .remove()
        .catch((err: unknown) => {
          if (statusOf(err) !== 404) this.reporter?.warn(`could not remove volume ${this.volume}: ${errorText(err)}`);
        });
    } catch (err) {
      this.reporter?.warn(`could not clean up the build's containers and volume ${this.volume}: ${errorText(err)}`);
    }
  }

  facts(): Record<string, string | number | boolean> {
    return {
      image: this.image,
      ...(this.imageId ? { imageId: this.imageId } : {}),
      ...(this.engine ? { dockerApiVersion: this.engine.apiVersion, dockerEngineVersion: this.engine.engineVersion } : {}),
      workspace: this.workspace,
      volume: this.volume,
    };
  }
}
