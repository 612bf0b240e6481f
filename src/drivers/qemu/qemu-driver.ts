// The qemu driver: boots a Djinn image (snapshot=on, so never written), waits
// for its SSH server and hands execute/upload/glob/download to the SSH transport.
// KVM when it really works, software emulation (TCG) otherwise.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveImage } from '../../images/resolve.js';
import type { ResolvedImage } from '../../images/resolved.js';
import { verifyImage } from '../../images/verify.js';
import type { Reporter } from '../../core/reporter.js';
import { SshSession } from '../../transport/ssh/index.js';
import type { CreateContext, Driver, KeptArtifact, KeptMachine, ResumedStage, StageCandidate } from '../driver.js';
import type { ExecResult, JobExecution, OutputSink } from '../../core/job.js';
import { DriverError } from '../../core/errors.js';
import type { DriverSettings } from '../../config/settings.js';
import { planAccel, type Accel } from './accel.js';
import { guestKey, sshTarget } from './ssh-target.js';
import { consoleHints } from './console-hints.js';
import { freePort, HOSTFWD_TAKEN, QemuProcess, waitForForward, type LaunchSpec } from './launch.js';
import { bootWarm, warmMode } from './warm/driver-boot.js';
import { saveStageState, stageStore, type StageMachine } from './warm/stage-state.js';
import { BootStalled, defaultStallMs, watchStall } from './stall.js';
import { prepareCloudBoot, waitForCloudInit, type CloudBoot } from './cloud-seed.js';
import { sleep } from '../../util/sleep.js';

export const TCG_BOOT_TIMEOUT_MS = 5 * 60_000;
export const KVM_BOOT_TIMEOUT_MS = 2 * 60_000;
/** In `-kvm auto`, a KVM boot that shows no SSH banner by then is given up for TCG. */
export const KVM_PROBE_MS = 45_000;
const PORT_ATTEMPTS = 10;
const CONSOLE_LINES = 40;
/** Console lines in the one log line about a stalled boot. */
const STALL_CONSOLE_LINES = 5;

export function defaultCpus(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

/** min(4096, half the host's memory), in MiB. */
export function defaultMemoryMiB(): number {
  return Math.max(256, Math.min(4096, Math.floor(os.totalmem() / 2 / 1048576)));
}

/** One boot attempt with one accelerator (see bootWith). */
interface BootAttempt {
  accel: Accel;
  image: ResolvedImage;
  cpus: number;
  memoryMiB: number;
  /** The boot timeout, for messages. */
  timeoutMs: number;
  /** Absolute time (Date.now()) by which the machine must accept the SSH login. */
  deadline: number;
  stallMs: number;
  reporter: Reporter;
  signal: AbortSignal;
}

class BootTimeout extends Error {}
/** QEMU exited during the boot (not because the port was taken). */
class QemuExited extends DriverError {}

export class QemuDriver implements Driver {
  readonly type = 'qemu';
  private qemu?: QemuProcess;
  private session?: SshSession;
  private dir?: string;
  private readonly stop = new AbortController();
  private creating?: Promise<void>;
  private readonly info: Record<string, string | number | boolean> = {};
  /** When create() started: the origin of the *Ms facts. */
  private t0 = 0;
  /** Catalogue images: the cloud-init seed and the key it authorises. */
  private cloud?: CloudBoot;
  /** Stage states (warm/stage-state.ts): asked for at create, what a save needs, and the state restored. */
  private stageStates?: CreateContext['stageStates'];
  private stageMachine?: StageMachine;
  private resumed?: ResumedStage;

  constructor(
    private readonly settings: DriverSettings,
    private readonly imageName: string,
  ) {}

  facts(): Record<string, string | number | boolean> {
    return { ...this.info };
  }

  /** The running QEMU (for tests and the warm-start code). */
  get process(): QemuProcess | undefined {
    return this.qemu;
  }

  async create(ctx: CreateContext): Promise<void> {
    const signal = AbortSignal.any([ctx.signal, this.stop.signal]);
    this.stageStates = ctx.stageStates;
    if (ctx.stageStates && warmMode(this.settings) === 'off')
      ctx.reporter.warn('stage cache: off, because warm starts are off (-warm off, or no cache folder); every stage runs');
    this.creating = this.boot(ctx.reporter, signal);
    return this.creating;
  }

  private async boot(reporter: Reporter, signal: AbortSignal): Promise<void> {
    const s = this.settings;
    const started = (this.t0 = Date.now());
    reporter.info('Creating machine with arch x86_64...');
    const name = s.image.name ?? this.imageName;
    if (!name)
      throw new DriverError(
        'the qemu driver needs an image: give it in the manifest (driver: { type: qemu, image: debian/stable }) or with -image.',
      );
    const image = await resolveImage({ name, settings: s, reporter, signal });
    await verifyImage(image.path, image.format);
    this.info.image = name;
    this.info.imageFile = image.path;
    this.info.imageSource = image.source;
    const cpus = s.qemu.cpus ?? defaultCpus();
    const memoryMiB = s.qemu.memoryMiB ?? defaultMemoryMiB();
    this.info.cpus = cpus;
    this.info.memoryMiB = memoryMiB;
    this.dir = await mkdtemp(path.join(s.tempDir || os.tmpdir(), 'qemu-'));
    if (image.cloudInit)
      this.cloud = await prepareCloudBoot({ cacheDir: s.cacheDir, buildDir: this.dir, imageId: image.sha256 ?? image.path });
    const plan = await planAccel(s.qemu.kvm);
    if (plan.note) reporter.info(plan.note);
    reporter.info(`Booting machine with image ${name}...`);
    let retriesLeft = s.qemu.bootRetries;
    for (let i = 0; i < plan.order.length; i++) {
      const accel = plan.order[i];
      const fallback = i + 1 < plan.order.length;
      const timeoutMs = fallback ? KVM_PROBE_MS : (s.qemu.bootTimeoutMs ?? (accel === 'kvm' ? KVM_BOOT_TIMEOUT_MS : TCG_BOOT_TIMEOUT_MS));
      // Retries after a stall share this deadline: the boot timeout bounds them all.
      const deadline = Date.now() + timeoutMs;
      const stallMs = s.qemu.bootStallMs ?? defaultStallMs(accel, this.cloud !== undefined);
      try {
        for (;;) {
          try {
            await this.bootWith({ accel, image, cpus, memoryMiB, timeoutMs, deadline, stallMs, reporter, signal });
            break;
          } catch (err) {
            if (!(err instanceof BootStalled) || signal.aborted) throw err;
            const tail = this.qemu ? await this.qemu.consoleTail(CONSOLE_LINES) : '';
            const pid = this.qemu?.pid;
            await this.killQemu();
            this.info.bootStalls = Number(this.info.bootStalls ?? 0) + 1;
            this.info.bootStallReason = err.message;
            const left = deadline - Date.now();
            if (retriesLeft <= 0 || left <= 1000) throw new DriverError(this.stallMessage(err, tail, retriesLeft <= 0));
            retriesLeft--;
            this.info.bootRetries = Number(this.info.bootRetries ?? 0) + 1;
            const last = tail.split('\n').slice(-STALL_CONSOLE_LINES).join('\n');
            const console = tail ? `; last console lines:\n${last}` : '; the serial console is empty';
            reporter.warn(
              `The machine stalled while booting (${err.message}): killed QEMU (pid ${pid}) and booting again (within the ` +
                `${Math.round(timeoutMs / 1000)}s boot timeout)${console}`,
            );
          }
        }
        this.info.accelerator = accel;
        this.info.bootSeconds = Math.round((Date.now() - started) / 100) / 10;
        if (this.info.start === undefined) {
          this.info.start = 'booted';
          this.info.startSeconds = this.info.bootSeconds;
          reporter.info(`Machine booted in ${this.info.bootSeconds}s.`);
        }
        return;
      } catch (err) {
        if (signal.aborted) throw new DriverError('the machine was stopped while booting.');
        if (!(err instanceof BootTimeout || err instanceof QemuExited) || !fallback) throw err;
        const why =
          err instanceof QemuExited
            ? `QEMU could not run with KVM (${causeLine(err.message)})`
            : `the KVM boot gave no SSH login within ${KVM_PROBE_MS / 1000}s`;
        reporter.info(`${why}: booting again with software emulation (TCG).`);
        await this.stopQemu();
      }
    }
  }

  private user(): string {
    return this.settings.ssh.user;
  }

  /**
   * One boot attempt with one accelerator; retries the port while QEMU reports
   * it taken. Throws BootStalled when the guest goes quiet for `stallMs`.
   */
  private async bootWith(attemptSpec: BootAttempt): Promise<void> {
    const { accel, image, cpus, memoryMiB, timeoutMs, deadline, stallMs, reporter, signal } = attemptSpec;
    const dir = this.dir!;
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const spec: LaunchSpec = {
        image: image.path,
        format: image.format,
        cpus,
        memoryMiB,
        accel,
        tcgThreads: this.settings.qemu.tcgThreads,
        sshPort: port,
        consoleLog: path.join(dir, 'console.log'),
        pidFile: path.join(dir, 'qemu.pid'),
        seed: this.cloud?.seed,
        ...(this.settings.qemu.detached ? { detached: true } : {}),
      };
      await rm(spec.consoleLog, { force: true });
      if (warmMode(this.settings) !== 'off') {
        // Warm starts (warm/, docs/warm-start.md): restore a saved machine, or boot and save one.
        try {
          const warm = await bootWarm({
            settings: this.settings,
            image,
            spec,
            tempDir: dir,
            deadline,
            stallMs,
            reporter,
            signal,
            onProcess: (q) => (this.qemu = q),
            cloud: this.cloud,
            stageStates: this.stageStates,
          });
          this.session = warm.session;
          this.stageMachine = warm.stage?.machine;
          this.resumed = warm.stage?.resumed;
          this.info.sshPort = port;
          Object.assign(this.info, warm.facts);
          this.info.sshLoginMs = Date.now() - this.t0;
          return;
        } catch (err) {
          if (signal.aborted || err instanceof BootStalled) throw err;
          const q = this.qemu;
          if (q && !q.running) {
            await this.afterQemuExit(q, attempt, image.path, true);
            continue;
          }
          if (err instanceof DriverError) throw err;
          throw new BootTimeout(await this.timeoutMessage(timeoutMs, port));
        }
      }
      const qemu = await QemuProcess.start(spec);
      this.qemu = qemu;
      this.info.sshPort = port;
      const stall = watchStall(spec.consoleLog, stallMs, qemu.pid);
      // Aborted by a stop and by a stall; the outer catch tells them apart.
      const watched = AbortSignal.any([signal, stall.signal]);
      try {
        // Whichever comes first: the forward is up, or QEMU has exited.
        const up = await waitForForward(qemu, port, deadline, watched);
        if (watched.aborted) throw new DriverError('stopped');
        if (!up && !qemu.running) {
          await this.afterQemuExit(qemu, attempt, image.path, false);
          continue;
        }
        if (!up) throw new BootTimeout(await this.timeoutMessage(timeoutMs, port));
        this.info.qemuRunningMs = Date.now() - this.t0;
        try {
          await this.connect(port, deadline, reporter, watched, stall.stop);
          return;
        } catch (err) {
          if (watched.aborted) throw err;
          if (!qemu.running) {
            await this.afterQemuExit(qemu, attempt, image.path, true);
            continue;
          }
          if (err instanceof BootTimeout) throw new BootTimeout(await this.timeoutMessage(timeoutMs, port));
          throw err;
        }
      } catch (err) {
        if (stall.signal.aborted && !signal.aborted) throw stall.signal.reason as BootStalled;
        throw err;
      } finally {
        stall.stop();
      }
    }
  }

  /**
   * Logs in as soon as the guest's sshd answers: the transport waits for the
   * banner itself (every extra probe costs a slow guest an sshd session).
   */
  private async connect(port: number, deadline: number, reporter: Reporter, signal: AbortSignal, bannerSeen: () => void): Promise<void> {
    const qemu = this.qemu!;
    const died = new AbortController();
    void qemu.exited.then(() => died.abort());
    const both = AbortSignal.any([signal, died.signal]);
    const key = await guestKey(this.settings.ssh, this.cloud?.privateKey);
    // The transport reports the host key right after the banner and key exchange: time that.
    const timed: Reporter = {
      ...reporter,
      info: (m) => {
        if (this.info.sshBannerMs === undefined && m.startsWith('Host key of')) {
          this.info.sshBannerMs = Date.now() - this.t0;
          // The guest answers: from here on it is logging in, not stalled.
          bannerSeen();
        }
        reporter.info(m);
      },
    };
    try {
      this.session = await SshSession.connect(
        sshTarget({
          port,
          ssh: this.settings.ssh,
          privateKey: key,
          deadline,
          reporter: timed,
          signal: both,
          hints: consoleHints(qemu.spec.consoleLog),
          cloudInit: this.cloud !== undefined,
        }),
      );
    } catch (err) {
      if (!both.aborted && Date.now() >= deadline - 1000) throw new BootTimeout((err as Error).message);
      throw err;
    }
    this.info.sshLoginMs = Date.now() - this.t0;
    if (this.cloud) {
      const session = this.session;
      await waitForCloudInit(
        (c) => session.exec(c),
        (l) => reporter.info(l),
        (l) => reporter.warn(l),
      );
      this.info.cloudInitMs = Date.now() - this.t0;
      reporter.info(`Machine ready in ${(this.info.cloudInitMs / 1000).toFixed(1)}s (root logged in, cloud-init done).`);
    }
  }

  /**
   * QEMU exited during a boot: returns when the boot should try another port
   * (the forward's port was taken meanwhile), else throws QemuExited.
   */
  private async afterQemuExit(qemu: QemuProcess, attempt: number, imagePath: string, withConsole: boolean): Promise<void> {
    const exit = await qemu.exited;
    if (HOSTFWD_TAKEN.test(exit.stderr) && attempt < PORT_ATTEMPTS) return;
    throw new QemuExited(`${bootFailure(imagePath, exit.stderr, exit.code)}${withConsole ? await this.consoleSection() : ''}`);
  }

  private async consoleSection(): Promise<string> {
    const log = this.qemu ? await this.qemu.consoleTail(CONSOLE_LINES) : '';
    return log ? `\nLast lines of the machine's serial console:\n${log}` : "\nThe machine's serial console is empty.";
  }

  /** The error when a stalled boot is not booted again. */
  private stallMessage(err: BootStalled, tail: string, noRetriesLeft: boolean): string {
    const why = noRetriesLeft
      ? this.info.bootRetries
        ? `it stalled again after ${this.info.bootRetries} retr${this.info.bootRetries === 1 ? 'y' : 'ies'} (see -boot-retries)`
        : 'booting again is off (-boot-retries 0)'
      : 'no time was left to boot again within -boot-timeout';
    const console = tail ? `\nLast lines of the machine's serial console:\n${tail}` : "\nThe machine's serial console is empty.";
    return `failed to boot machine: it stalled (${err.message}; see -boot-stall) and ${why}.${console}`;
  }

  private async timeoutMessage(timeoutMs: number, port: number): Promise<string> {
    return (
      `Timed out trying to connect to 127.0.0.1:${port} after ${Math.round(timeoutMs / 1000)}s: the machine's SSH ` +
      `server never answered (see -boot-timeout).${await this.consoleSection()}`
    );
  }

  private requireSession(): SshSession {
    if (!this.session) throw new DriverError('the machine is not running.');
    return this.session;
  }

  execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult> {
    return this.requireSession().execute(job, sink, signal);
  }

  upload(localPath: string, guestPath: string, mode: number): Promise<void> {
    return this.requireSession().upload(localPath, guestPath, mode);
  }

  glob(pattern: string): Promise<string[]> {
    return this.requireSession().glob(pattern);
  }

  download(guestPath: string, localPath: string): Promise<void> {
    return this.requireSession().download(guestPath, localPath);
  }

  /** Streams stdin into a command in the machine (the action's workspace copy: tar over the build's connection). */
  exec(
    command: string,
    opts?: { stdin?: NodeJS.ReadableStream; signal?: AbortSignal },
  ): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }> {
    return this.requireSession().exec(command, opts);
  }

  resumedStage(): ResumedStage | undefined {
    return this.resumed;
  }

  async saveStage(save: StageCandidate & { artifacts: KeptArtifact[] }): Promise<{ seconds: number; bytes: number } | { error: string }> {
    const m = this.stageMachine;
    if (!m || !this.dir || !this.settings.cacheDir || !this.qemu?.running)
      return { error: 'this machine cannot be saved (an earlier save of this build failed, or its disk layers are not files we can name)' };
    const r = await saveStageState(
      m,
      stageStore(this.settings.cacheDir),
      save.key,
      { name: save.stage, artifacts: save.artifacts },
      this.dir,
      this.stop.signal,
    );
    if ('error' in r) {
      // The layers may have moved under the machine: no further save this build.
      this.stageMachine = undefined;
      return { error: r.error };
    }
    this.stageMachine = { ...m, below: r.below };
    this.info.stageSaved = save.stage;
    this.info.stageSaveSeconds = Math.round(r.seconds * 10) / 10;
    return { seconds: r.seconds, bytes: r.manifest.state.bytes + r.manifest.overlay.bytes };
  }

  /** SIGKILL: a frozen QEMU does not act on SIGTERM. */
  private async killQemu(): Promise<void> {
    const q = this.qemu;
    this.qemu = undefined;
    if (q) await q.kill();
  }

  async keep(): Promise<KeptMachine> {
    const qemu = this.qemu;
    const session = this.session;
    if (!qemu?.running || !session || session.isLost) throw new DriverError('the machine is not running: nothing to keep.');
    if (!qemu.spec.detached) throw new DriverError('this machine was not started to be kept (settings.qemu.detached).');
    this.qemu = undefined;
    this.session = undefined;
    const dir = this.dir!;
    this.dir = undefined;
    await Promise.race([session.close().catch(() => {}), sleep(5000, undefined, { unref: true })]);
    qemu.release();
    return { sshPort: session.target.port, user: this.user(), pid: qemu.pid, dir };
  }

  private async stopQemu(): Promise<void> {
    const q = this.qemu;
    this.qemu = undefined;
    if (q) await q.stop();
  }

  async destroy(): Promise<void> {
    this.stop.abort();
    // A create still in flight (SIGTERM while booting) must finish before we tear down what it started.
    await this.creating?.catch(() => {});
    const session = this.session;
    this.session = undefined;
    if (session) {
      // At most 5 s: a hung guest must not hold up stopping it.
      await Promise.race([session.close().catch(() => {}), sleep(5000, undefined, { unref: true })]);
    }
    await this.stopQemu().catch(() => {});
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => {});
    this.dir = undefined;
  }
}

/** The first line that says why, past our own "failed to boot" heading. */
function causeLine(text: string): string {
  return (
    text
      .split('\n')
      .find((l) => l.trim() && !l.startsWith('failed to boot'))
      ?.trim() ?? text.trim()
  );
}

function bootFailure(image: string, stderr: string, code: number | null): string {
  const why = stderr || `exit status ${code}`;
  if (/Failed to get .*lock/.test(stderr))
    return `failed to boot machine: image ${image} is currently being modified by another program.\n${why}`;
  return `failed to boot machine: QEMU exited (status ${code}):\n${why}`;
}
