// The execution plan: what will run, in which order, before any machine boots.
import type { SourcePosition } from '../core/reporter.js';
import { UsageError } from '../core/errors.js';
import type { Manifest, Source, Warning } from './types.js';

export interface PlanJob {
  stage: string;
  name: string;
  commands: string[];
  artifacts: { src: string; dst: string; position?: SourcePosition }[];
  position?: SourcePosition;
  /** For clone jobs of the setup stage: the source they clone. */
  source?: Source;
}

export interface PlanStage {
  name: string;
  allowFailures: boolean;
  jobs: PlanJob[];
}

export interface Plan {
  manifest: string;
  driver: Record<string, string>;
  env: string[];
  objects: { src: string; dst: string; position?: SourcePosition }[];
  stages: PlanStage[];
  warnings: Warning[];
}

export const SETUP_STAGE = 'setup';

/** Djinn's offline clone commands for one source. */
export function cloneCommands(source: Source): string[] {
  const commands: string[] = [];
  // Quoted where needed: a URL, ref or folder is text from the manifest, never shell syntax.
  const dir = shellWord(source.dir);
  if (source.dir) commands.push(`mkdir -p ${dir}`);
  commands.push(`git clone ${shellWord(source.url)} ${source.dir ? dir : ''}`.trimEnd());
  if (source.ref) commands.push(`cd ${dir}`, `git checkout -q ${shellWord(source.ref)}`);
  return commands;
}

/** The word as it is when the shell would read it unchanged, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./~^-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface PlanOptions {
  /** Keep the setup stage and this stage only. */
  stage?: string;
}

export function makePlan(m: Manifest, options: PlanOptions = {}): Plan {
  const stages: PlanStage[] = [];
  if (m.sources.length > 0) {
    stages.push({
      name: SETUP_STAGE,
      allowFailures: false,
      jobs: m.sources.map((source, i) => ({
        stage: SETUP_STAGE,
        name: `clone.${i + 1}`,
        commands: cloneCommands(source),
        artifacts: [],
        position: source.position,
        source,
      })),
    });
  }
  const allowed = new Set(m.allowFailures.map((a) => a.name));
  for (const s of m.stages) {
    stages.push({
      name: s.name,
      allowFailures: allowed.has(s.name),
      jobs: m.jobs
        .filter((j) => j.stage === s.name)
        .map((j) => ({ stage: j.stage, name: j.name, commands: j.commands, artifacts: j.artifacts, position: j.position })),
    });
  }
  let kept = stages;
  if (options.stage !== undefined && options.stage !== '') {
    const names = m.stages.map((s) => s.name);
    // "setup" also names the clone stage, as in Djinn, where `-stage setup` runs just the clones.
    const cloneOnly = options.stage === SETUP_STAGE && m.sources.length > 0;
    if (!names.includes(options.stage) && !cloneOnly) {
      throw new UsageError(
        `unknown stage "${options.stage}"; the manifest's stages are: ${names.length ? names.join(', ') : '(none)'}.`,
        { file: m.file },
        '-stage',
      );
    }
    kept = stages.filter((s) => s.name === options.stage || (s.name === SETUP_STAGE && s.jobs.some((j) => j.source)));
  }
  return {
    manifest: m.file,
    driver: { type: m.driver.type, ...m.driver.options },
    env: m.env.map((e) => `${e.key}=${e.value}`),
    objects: m.objects.map((o) => ({ src: o.src, dst: o.dst, position: o.position })),
    stages: kept,
    warnings: m.warnings,
  };
}

/** The plan as `plan --json` prints it: positions folded into `line`. */
export function planToJson(plan: Plan): unknown {
  const strip = (x: { src: string; dst: string }) => ({ src: x.src, dst: x.dst });
  return {
    manifest: plan.manifest,
    driver: plan.driver,
    env: plan.env,
    objects: plan.objects.map(strip),
    stages: plan.stages.map((s) => ({
      name: s.name,
      allowFailures: s.allowFailures,
      jobs: s.jobs.map((j) => ({
        name: j.name,
        commands: j.commands,
        artifacts: j.artifacts.map(strip),
        ...(j.position?.line ? { line: j.position.line } : {}),
      })),
    })),
    warnings: plan.warnings.map((w) => ({ line: w.line, column: w.column, message: w.message })),
  };
}
