// What a job run passes between the runner, the drivers and the transport.

export interface EnvVar {
  key: string;
  value: string;
}

/** One job, ready to run: the script is Djinn's (`#!/bin/sh`, `exec 2>&1`, `set -ex`, ...). */
export interface JobExecution {
  stage: string;
  name: string;
  /** File-system friendly name for the script, e.g. `make.1.sh`. */
  scriptName: string;
  script: string;
  env: EnvVar[];
}

/** Where a job's output goes, chunk by chunk, as it arrives. */
export interface OutputSink {
  /**
   * Takes a chunk. A promise means the consumer is full (e.g. a slow stdout
   * pipe): the producer pauses its source until it settles, so a job printing
   * gigabytes never piles up in our memory.
   */
  write(chunk: Buffer): unknown;
}

/** Pauses `source` while a sink's write is pending. */
export function pauseWhile(source: { pause(): unknown; resume(): unknown }, pending: unknown): void {
  if (!(pending instanceof Promise)) return;
  source.pause();
  void pending.then(
    () => source.resume(),
    () => source.resume(),
  );
}

export interface ExecResult {
  /** The script's exit status, or null when it has none (signal, lost connection). */
  exitCode: number | null;
  /** Set when the job did not end by itself with an exit status: why. */
  error?: string;
}
