// Names of what the main step leaves for the post step (core.saveState).
export const STATE = {
  /** RUNNER_TEMP/djinn-xxxx: one build-N folder per manifest (console log, pidfile, keys). */
  runDir: 'run-dir',
  artifactsDir: 'artifacts-dir',
  artifactName: 'artifact-name',
  /** 'true' when post should upload what main could not. */
  uploadPending: 'upload-pending',
  /** Build folders whose machine never ran a job: post prints their serial console tail. */
  bootFailed: 'boot-failed',
  /** The kept machine's file (`keep: true`), and its own folder (console log, pidfile). */
  kept: 'kept-machine',
  keptDir: 'kept-dir',
  /** JSON {pattern, key}: stage states to save with @actions/cache in the post step. */
  stageCache: 'stage-cache',
  /** Set when main got to its end (not killed). */
  finished: 'finished',
} as const;
