// The `djinn` command line: the offline runner's flags, plus lint, plan,
// image and workflow commands. A thin front end over the engine.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readDriverConf, type DriverConf } from '../config/driver-conf.js';
import type { EnvVar } from '../core/job.js';
import { UsageError, formatLocated } from '../core/errors.js';
import { makeDriver } from '../drivers/index.js';
import { emptyConf, all, str, type FlagValues, settingsFromFlags, buildTempRoot, cacheDirFlag } from '../config/settings.js';
import { parseManifestFile } from '../manifest/parse.js';
import { makePlan, planToJson, type Plan } from '../manifest/plan.js';
import type { Manifest } from '../manifest/types.js';
import { parseEnvAssignment, parseEnvLines } from '../runner/prepare.js';
import { planStageKeys, runBuild } from '../runner/runner.js';
import { stageStore } from '../drivers/qemu/warm/stage-state.js';
import { resolveStageCache } from '../config/stage-cache.js';
import { exitCodeFor } from '../core/status.js';
import { parseDuration } from '../util/duration.js';
import { readInputText } from '../util/input-file.js';
import { removeTree } from '../util/remove-tree.js';
import { RUN_FLAGS } from './flag-specs.js';
import { parseFlags, type FlagSpec } from './flags.js';
import { TerminalReporter } from './terminal-reporter.js';
import { VERSION } from '../core/version.js';
import { imageCommand } from './image-command.js';
import { cacheCommand } from './cache-command.js';
import { workflowCommand } from './workflow-command.js';
import { COMMAND_HELP, reportFailure, usage } from './usage.js';
import { checkHost } from './host-check.js';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<keyof typeof COMMAND_HELP, Command> = {
  lint: lintCommand,
  plan: planCommand,
  image: imageCommand,
  cache: cacheCommand,
  workflow: workflowCommand,
};

export async function main(argv: string[]): Promise<number> {
  try {
    const cmd = argv[0] && Object.hasOwn(COMMANDS, argv[0]) ? COMMANDS[argv[0] as keyof typeof COMMANDS] : undefined;
    if (cmd) return await cmd(argv.slice(1));
    return await runCommand(argv);
  } catch (err) {
    return reportFailure(err);
  }
}

function loadManifest(flags: FlagValues, file = str(flags, 'manifest') ?? '.djinn.yml'): Manifest {
  return parseManifestFile(file);
}

/** A word where no positional argument belongs: a mistyped command, most likely. */
function unexpectedArgument(arg: string, where: string): UsageError {
  const near = closest(arg, Object.keys(COMMANDS));
  const hint = near ? `; did you mean "${near}"?` : `; the commands are ${Object.keys(COMMANDS).join(', ')}, and flags start with "-".`;
  return new UsageError(`unexpected argument "${arg.slice(0, 60)}" ${where}${hint}`);
}

/** The candidate within two edits of `word` (case aside), if any. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours (`lnit`) counted as one edit. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function printWarnings(m: Manifest): void {
  for (const w of m.warnings)
    process.stderr.write(`warning: ${formatLocated(w.message, { file: w.file ?? m.file, line: w.line, column: w.column })}\n`);
}

const LINT_FLAGS: FlagSpec[] = [
  { group: 'build', name: 'manifest', kind: 'string', default: '.djinn.yml', help: 'the manifest to check' },
  { group: 'build', name: 'help', kind: 'bool', help: 'print this help' },
];

async function lintCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlags(argv, LINT_FLAGS);
  if (flags.help) {
    process.stdout.write(usage(LINT_FLAGS, 'usage: djinn lint [-manifest FILE] [FILE...]'));
    return 0;
  }
  const given = str(flags, 'manifest');
  const files = [...(given !== undefined ? [given] : []), ...args];
  if (files.length === 0) files.push('.djinn.yml');
  let code = 0;
  for (const f of files) {
    try {
      const m = parseManifestFile(f);
      printWarnings(m);
      makePlan(m);
      process.stdout.write(`${f}: ok${m.warnings.length ? ` (${m.warnings.length} warning${m.warnings.length > 1 ? 's' : ''})` : ''}\n`);
    } catch (err) {
      code = Math.max(code, reportFailure(err));
    }
  }
  return code;
}

const PLAN_FLAGS: FlagSpec[] = [
  ...LINT_FLAGS,
  { group: 'build', name: 'stage', kind: 'string', help: 'keep the setup stage and this stage only' },
  { group: 'output', name: 'json', kind: 'bool', help: 'print the plan as JSON' },
  // With -cache-stage, each job's status says whether a saved stage state would skip it.
  ...RUN_FLAGS.filter((f) => ['cache-stage', 'cache-key', 'cache-max-age', 'cache-dir', 'objects', 'env', 'env-file'].includes(f.name)),
];

async function planCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlags(argv, PLAN_FLAGS);
  if (flags.help) {
    process.stdout.write(usage(PLAN_FLAGS, 'usage: djinn plan [-manifest FILE | FILE] [-stage NAME] [--json]'));
    return 0;
  }
  if (args.length > 1 || (args.length === 1 && str(flags, 'manifest') !== undefined)) {
    throw new UsageError(
      `plan takes one manifest, found ${args.length + (str(flags, 'manifest') !== undefined ? 1 : 0)}; lint checks several.`,
    );
  }
  const m = loadManifest(flags, args[0]);
  const plan = makePlan(m, { stage: str(flags, 'stage') });
  if (flags.json) {
    const json = planToJson(plan) as { stages: { jobs: Record<string, unknown>[] }[] };
    const cached = await cachedStages(flags, m.env, plan);
    if (cached) {
      for (const [i, s] of json.stages.entries())
        for (const [k, j] of s.jobs.entries()) {
          const hit = i <= cached.index && !plan.stages[i]!.jobs[k]!.source;
          Object.assign(j, hit ? { status: 'cached', cachedAt: cached.savedAt } : { status: 'queued' });
        }
    }
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  printWarnings(m);
  const out: string[] = [
    `driver: ${Object.entries(plan.driver)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  ];
  if (plan.env.length) out.push(`env: ${plan.env.map((e) => e.split('=')[0]).join(', ')}`);
  for (const o of plan.objects) out.push(`object: ${o.src} => ${o.dst}`);
  for (const s of plan.stages) {
    out.push(`stage ${s.name}${s.allowFailures ? ' (failures allowed)' : ''}`);
    for (const j of s.jobs) {
      out.push(`  job ${j.name}`);
      for (const c of j.commands) out.push(`    $ ${c.replace(/\n/g, '\n      ')}`);
      for (const a of j.artifacts) out.push(`    artifact ${a.src} => ${a.dst}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/**
 * With -cache-stage: the latest stage whose saved state (young enough) has this
 * build's key; `index` -1 when none. The base machine (image, QEMU, memory) is
 * only compared when a build runs.
 */
async function cachedStages(flags: FlagValues, env: Manifest['env'], plan: Plan): Promise<{ index: number; savedAt?: string } | undefined> {
  const settings = resolveStageCache(
    { stages: all(flags, 'cache-stage'), key: str(flags, 'cache-key'), maxAge: str(flags, 'cache-max-age') },
    { stages: '-cache-stage', maxAge: '-cache-max-age' },
  );
  if (!settings.stages.length) return undefined;
  const allEnv = [...env.map((e) => ({ key: e.key, value: e.value })), ...extraEnv(flags)];
  const keys = await planStageKeys(plan, allEnv, path.resolve(str(flags, 'objects') ?? '.'), settings);
  if (!keys) return { index: -1 };
  const states = await stageStore(cacheDirFlag(flags)).list();
  for (const [i, key] of [...keys].reverse()) {
    const hit = states.find((st) => st.manifest.key.stage === key && Date.now() - Date.parse(st.manifest.createdAt) < settings.maxAgeMs);
    if (hit) return { index: i, savedAt: hit.manifest.createdAt };
  }
  return { index: -1 };
}

export function defaultDriverConf(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'djinn', 'driver.conf');
}

function loadConf(flags: FlagValues): DriverConf {
  const given = str(flags, 'driver');
  const file = given ?? defaultDriverConf();
  if (!existsSync(file)) {
    if (given) throw new UsageError(`driver configuration ${file} does not exist.`, {}, '-driver');
    return emptyConf(file);
  }
  const conf = readDriverConf(file);
  for (const w of conf.warnings)
    process.stderr.write(`warning: ${formatLocated(w.message, { file: w.file ?? file, line: w.line, column: w.column })}\n`);
  return conf;
}

/** Extra env from -env-file and -env, after the manifest's. Their values are masked in the log. */
function extraEnv(flags: FlagValues): EnvVar[] {
  const out: EnvVar[] = [];
  const f = str(flags, 'env-file');
  if (f !== undefined) {
    const read = readInputText(f);
    if ('error' in read) throw new UsageError(`cannot read the env file: ${read.error}.`, { file: f }, '-env-file');
    out.push(...parseEnvLines(read.text.split('\n'), '-env-file', f));
  }
  for (const e of all(flags, 'env')) out.push(parseEnvAssignment(e, '-env'));
  return out;
}

function durationFlag(flags: FlagValues, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw new UsageError(`invalid duration "${v}": write e.g. 90s, 30m or 1h30m.`, {}, `-${name}`);
  return ms;
}

async function runCommand(argv: string[]): Promise<number> {
  const { flags, args } = parseFlags(argv, RUN_FLAGS);
  if (flags.help || flags.h) {
    process.stdout.write(usage(RUN_FLAGS, 'usage: djinn [flags]            run a manifest\n       djinn <command> [flags]'));
    return 0;
  }
  if (flags.version) {
    process.stdout.write(`djinn ${VERSION} ${process.platform}/${process.arch}\n`);
    return 0;
  }
  if (args.length > 0) throw unexpectedArgument(args[0], 'before or after the flags');
  const manifest = loadManifest(flags);
  printWarnings(manifest);
  const plan = makePlan(manifest, { stage: str(flags, 'stage') });
  const conf = loadConf(flags);
  const timeoutMs = durationFlag(flags, 'timeout');
  const jobTimeoutMs = durationFlag(flags, 'job-timeout');
  const extra = extraEnv(flags);
  const stageCache = resolveStageCache(
    { stages: all(flags, 'cache-stage'), key: str(flags, 'cache-key'), maxAge: str(flags, 'cache-max-age') },
    { stages: '-cache-stage', maxAge: '-cache-max-age' },
  );
  const artifactsDir = path.resolve(str(flags, 'artifacts') ?? '.');
  const objectsDir = path.resolve(str(flags, 'objects') ?? '.');
  if (!existsSync(objectsDir)) throw new UsageError(`objects folder ${objectsDir} does not exist.`, {}, '-objects');
  try {
    mkdirSync(artifactsDir, { recursive: true });
  } catch (err) {
    throw new UsageError(
      `cannot create the artifacts folder ${artifactsDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`,
      {},
      '-artifacts',
    );
  }
  if (!statSync(artifactsDir).isDirectory()) throw new UsageError(`${artifactsDir} is not a folder.`, {}, '-artifacts');
  if (!statSync(objectsDir).isDirectory()) throw new UsageError(`${objectsDir} is not a folder.`, {}, '-objects');
  // Every setting is checked before anything is created, so that a bad one leaves nothing behind.
  const checked = settingsFromFlags(flags, conf, '');
  try {
    await checkHost(manifest, checked, flags['install-deps'] === true);
  } catch (err) {
    if (err instanceof Error && err.name === 'InstallError') throw new UsageError(err.message, {}, '-install-deps');
    throw err;
  }

  const tempRoot = buildTempRoot();
  await mkdir(tempRoot, { recursive: true, mode: 0o700 });
  const tempDir = await mkdtemp(path.join(tempRoot, 'djinn-build-'));
  const stop = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`djinn: ${sig} again: still stopping the machine, please wait...\n`);
      return;
    }
    signalled = sig;
    process.stderr.write(`djinn: ${sig}: stopping the build...\n`);
    stop.abort('killed');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const settings = settingsFromFlags(flags, conf, tempDir);
    const reporter = new TerminalReporter(
      undefined,
      extra.map((e) => e.value).filter((v) => v.length >= 3),
    );
    const driver = makeDriver(manifest.driver, settings);
    const report = await runBuild({
      plan,
      driver,
      reporter,
      env: [...manifest.env.map((e) => ({ key: e.key, value: e.value })), ...extra],
      artifactsDir,
      objectsDir,
      timeoutMs,
      jobTimeoutMs,
      signal: stop.signal,
      stageCache,
    });
    reporter.buildEnd(report);
    if (signalled) return signalled === 'SIGINT' ? 130 : 143;
    return exitCodeFor(report.status);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await removeTree(tempDir);
  }
}
