// The key of a stage state: what can change the machine up to the end of a
// stage. The driver adds its own base-machine key (image, QEMU, hardware);
// this is the build's part. Later stages and artifact rules are left out:
// they do not change the machine before the state is saved.
import { createHash } from 'node:crypto';
import type { EnvVar } from '../core/job.js';
import type { PlanStage } from '../manifest/plan.js';

/** Bump when what goes into the key changes. */
const STAGE_KEY_FORMAT = 1;

export interface StageKeyInput {
  /** The env the jobs see (manifest env and extra env), values included. */
  env: EnvVar[];
  /** Every object: its name, destination and the SHA-256 of its contents. */
  objects: { src: string; dst: string; sha256: string }[];
  /** The plan's stages, in order. */
  stages: PlanStage[];
  /** The user's own part (`-cache-key`), e.g. a hash of a lock file. */
  userKey: string;
}

/**
 * Hex SHA-256 of everything that can change the machine up to the end of
 * `stages[index]`: env, objects, and each job's stage, name and commands of
 * that stage and every stage before it (a clone job is its source's URL, ref
 * and folder), plus the user's key.
 */
export function stageKey(input: StageKeyInput, index: number): string {
  if (index < 0 || index >= input.stages.length) throw new RangeError(`no stage at index ${index}`);
  const jobs = input.stages.slice(0, index + 1).map((s) => ({
    stage: s.name,
    jobs: s.jobs.map((j) =>
      j.source
        ? { name: j.name, source: { url: j.source.url, ref: j.source.ref, dir: j.source.dir } }
        : { name: j.name, commands: j.commands },
    ),
  }));
  const canonical = JSON.stringify({
    format: STAGE_KEY_FORMAT,
    env: input.env.map((e) => [e.key, e.value]),
    objects: input.objects.map((o) => [o.src, o.dst, o.sha256]),
    stages: jobs,
    userKey: input.userKey,
  });
  return createHash('sha256').update(canonical).digest('hex');
}
