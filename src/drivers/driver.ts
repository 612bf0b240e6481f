// The one small interface every driver implements. Modelled on Djinn's
// create / execute / destroy, plus the file operations the runner needs to
// place objects and collect artifacts: the runner owns naming, logging and
// path safety, a driver only moves bytes.
import type { Reporter } from '../core/reporter.js';
import type { EnvVar, ExecResult, JobExecution, OutputSink } from '../core/job.js';

/** What the runner hands a driver when it starts the build. */
export interface CreateContext {
  reporter: Reporter;
  /** The manifest's `env`, in manifest order. Nothing of the host's. */
  env: EnvVar[];
  /** Aborted on SIGINT/SIGTERM or on the whole-build timeout. */
  signal: AbortSignal;
  /**
   * Stage states that could serve this build, the latest stage first (only for
   * drivers with `saveStage`): start from the first one the driver has, young
   * enough, instead of a fresh machine, and say so through `resumedStage`.
   */
  stageStates?: { candidates: StageCandidate[]; maxAgeMs: number };
}

/** A stage whose end state may have been saved: `key` is the build's part of its key (the driver adds its own machine's). */
export interface StageCandidate {
  stage: string;
  key: string;
}

/** A file collected as an artifact, kept with a stage state and placed again after a restore. */
export interface KeptArtifact {
  job: string;
  /** The machine file it came from. */
  src: string;
  /** Its path in the artifacts folder, relative. */
  dst: string;
  /** Where the file is now (artifacts folder when saving, the state's folder after a restore). */
  path: string;
}

/** The state a machine was restored from at create. */
export interface ResumedStage {
  stage: string;
  key: string;
  /** When the state was saved (ISO 8601). */
  savedAt: string;
  artifacts: KeptArtifact[];
}

export interface Driver {
  /** `qemu`, `docker`, `ssh` or `os`. */
  readonly type: string;
  /** Boot / connect. Throws DriverError with a user-facing message on failure. */
  create(ctx: CreateContext): Promise<void>;
  /**
   * Runs one job's script in the machine, streaming its output to `sink`.
   * When `signal` aborts (job timeout, build timeout, SIGINT/SIGTERM) the driver
   * stops the job (and everything it started) and resolves soon after.
   */
  execute(job: JobExecution, sink: OutputSink, signal: AbortSignal): Promise<ExecResult>;
  /** Copies a host file into the machine. Relative guest paths are under the login user's home. Parent folders are created. */
  upload(localPath: string, guestPath: string, mode: number): Promise<void>;
  /** Regular files in the machine matching a Go `path.Match` pattern (relative to home), in sorted order. */
  glob(pattern: string): Promise<string[]>;
  /** Copies a file out of the machine to `localPath` (the runner passes a temporary name and renames it). */
  download(guestPath: string, localPath: string): Promise<void>;
  /**
   * Optional: runs a small helper command in the machine with `stdin` streamed in
   * (the action copies the runner's checkout in as a tar stream). Drivers that
   * reach the machine over SSH delegate to SshSession.exec; without it callers
   * fall back to upload + execute.
   */
  exec?(
    command: string,
    opts?: { stdin?: NodeJS.ReadableStream; signal?: AbortSignal },
  ): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }>;
  /** Always safe to call, also after a failed or partial create; never throws. */
  destroy(): Promise<void>;
  /**
   * Optional: leaves the machine running after the build (the action's `keep`)
   * and says where it is; our connection is closed. From then on the caller
   * owns the machine (it stops `pid`); destroy() no longer touches it.
   */
  keep?(): Promise<KeptMachine>;
  /**
   * Optional: saves the running machine as the state after `stage` (all its jobs
   * passed, no session open) with the artifacts collected so far, and lets it go
   * on. Never throws: a failed save is an `error` the runner reports as a warning.
   */
  saveStage?(save: StageCandidate & { artifacts: KeptArtifact[] }): Promise<{ seconds: number; bytes: number } | { error: string }>;
  /** Optional: after create, the stage state the machine was restored from (undefined: a fresh machine). */
  resumedStage?(): ResumedStage | undefined;
  /** Facts for reports: accelerator, boot time, image, ... */
  facts?(): Record<string, string | number | boolean>;
}

/** A machine left running after its build: reachable over SSH on 127.0.0.1. */
export interface KeptMachine {
  sshPort: number;
  user: string;
  /** The process to stop when done with it. */
  pid: number;
  /** The machine's own files (console log, pidfile); remove after stopping it. */
  dir: string;
}
