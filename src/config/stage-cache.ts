// Stage caching (docs/warm-start.md, "Stage states"): which stages to save the
// machine after, the user's part of the key and how old a state may be. Runner
// options, resolved the same way from CLI flags and action inputs.
import { UsageError } from '../core/errors.js';
import { parseDuration } from '../util/duration.js';

export interface StageCacheSettings {
  /** Stage names whose end state is saved and restored; empty: stage caching is off. */
  stages: string[];
  /** The user's own part of the key (`-cache-key`). */
  userKey: string;
  /** A state older than this is not restored (it is rebuilt and replaced). */
  maxAgeMs: number;
}

export const DEFAULT_STAGE_MAX_AGE_MS = 7 * 24 * 3600_000;

/**
 * From the raw values: stage names (repeated flags, or lines / commas of the
 * action input), the key text and the max age (a duration, or 0). `field`
 * names the option in errors, e.g. `-cache-max-age`.
 */
export function resolveStageCache(
  raw: { stages: string[]; key?: string; maxAge?: string },
  fields: { stages: string; maxAge: string },
): StageCacheSettings {
  const stages = [
    ...new Set(
      raw.stages
        .flatMap((s) => s.split(/[\n,]/))
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  for (const s of stages)
    if (/\s/.test(s)) throw new UsageError(`"${s}" is not a stage name (stage names have no spaces).`, {}, fields.stages);
  let maxAgeMs = DEFAULT_STAGE_MAX_AGE_MS;
  const age = raw.maxAge?.trim();
  if (age !== undefined && age !== '') {
    const ms = parseAge(age);
    if (ms === undefined) throw new UsageError(`invalid duration "${age}": write e.g. 0, 12h, 7d or 1d12h.`, {}, fields.maxAge);
    maxAgeMs = ms;
  }
  return { stages, userKey: raw.key ?? '', maxAgeMs };
}

/** A duration that may also start with days (`7d`, `1d12h`): states age in days. */
function parseAge(text: string): number | undefined {
  const m = /^(\d+)d(.*)$/.exec(text);
  if (!m) return parseDuration(text);
  const rest = m[2] ? parseDuration(m[2]) : 0;
  return rest === undefined ? undefined : Number(m[1]) * 24 * 3600_000 + rest;
}
