// How the engine talks to a front end (CLI terminal, GitHub Actions log).
// The engine never prints by itself.
import type { Status } from './status.js';

export interface SourcePosition {
  file?: string;
  line?: number;
  column?: number;
}

export interface JobReport {
  stage: string;
  name: string;
  status: Status;
  /** Milliseconds; 0 while queued. */
  durationMs: number;
  /** Where the job is defined in the manifest, for annotations. */
  position?: SourcePosition;
  /** Why it failed, when there is more to say than the exit status. */
  error?: string;
  exitCode?: number | null;
  /** For a `cached` job: when the state it was restored from was saved (ISO 8601). */
  cachedAt?: string;
}

export interface ArtifactReport {
  job: string;
  src: string;
  dst: string;
  /** Absolute path on the host. */
  path: string;
  bytes: number;
}

export interface BuildReport {
  status: Status;
  durationMs: number;
  jobs: JobReport[];
  artifacts: ArtifactReport[];
  facts: Record<string, string | number | boolean>;
  /** A one-line reason when the build did not pass. */
  reason?: string;
}

export interface Reporter {
  /** A runner line, e.g. `Booting machine with image debian/stable...`. */
  info(message: string): void;
  warn(message: string, position?: SourcePosition): void;
  error(message: string, position?: SourcePosition): void;
  jobStart(job: JobReport): void;
  /** Raw job output, as it arrives. */
  jobOutput(job: JobReport, chunk: Buffer): void | Promise<void>;
  jobEnd(job: JobReport): void;
  buildEnd(build: BuildReport): void;
}

/** A reporter that drops everything, for callers that only want the result. */
export const silentReporter: Reporter = {
  info() {},
  warn() {},
  error() {},
  jobStart() {},
  jobOutput() {},
  jobEnd() {},
  buildEnd() {},
};
