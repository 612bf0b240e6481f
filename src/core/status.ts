// Djinn's statuses, ordered: a build's status is the worst of its jobs'. `cached` is ours: the job's
// stage was not run because the machine was restored from the state saved after it; it counts as passed.
export const STATUSES = [
  'queued',
  'running',
  'passed',
  'cached',
  'skipped',
  'passed_with_failures',
  'failed',
  'killed',
  'timed_out',
] as const;

export type Status = (typeof STATUSES)[number];

export function worst(a: Status, b: Status): Status {
  return STATUSES.indexOf(a) >= STATUSES.indexOf(b) ? a : b;
}

/** Exit status of the CLI for a finished build: 0 passed, 1 otherwise. */
export function exitCodeFor(status: Status): number {
  return status === 'passed' || status === 'cached' || status === 'passed_with_failures' || status === 'skipped' ? 0 : 1;
}
