// Runs the bundled action (dist/index.js, then dist/post.js) exactly as the
// GitHub runner does: every input as INPUT_<NAME> (upper case, hyphens kept)
// with action.yml's defaults applied, the GITHUB_OUTPUT / GITHUB_STATE /
// GITHUB_ENV / GITHUB_STEP_SUMMARY files created beforehand, RUNNER_TEMP,
// RUNNER_TOOL_CACHE and GITHUB_WORKSPACE, and STATE_<name> for the post step
// parsed from what main saved. Tests read the files it leaves.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ROOT } from './cli.js';

export const DIST_MAIN = path.join(ROOT, 'dist', 'index.js');
export const DIST_POST = path.join(ROOT, 'dist', 'post.js');

/** action.yml's input defaults, which the runner (not @actions/core) applies. */
export function actionDefaults(): Record<string, string> {
  const doc = parse(readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as { inputs: Record<string, { default?: unknown }> };
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(doc.inputs)) out[name] = spec.default === undefined ? '' : String(spec.default);
  return out;
}

/** Parses a file-command file: `name<<delimiter\nvalue\ndelimiter` entries (and legacy `name=value` lines). */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (heredoc) {
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) value.push(lines[i]);
      out[heredoc[1]] = value.join('\n');
    } else if (lines[i].includes('=')) {
      const eq = lines[i].indexOf('=');
      out[lines[i].slice(0, eq)] = lines[i].slice(eq + 1);
    }
  }
  return out;
}

export interface Runner {
  root: string;
  workspace: string;
  temp: string;
  toolCache: string;
  files: { output: string; state: string; env: string; summary: string; path: string };
  cleanup(): Promise<void>;
}

/** A fresh runner layout; `workspace` is used as is when given (the test owns it). */
export async function makeRunner(workspace?: string): Promise<Runner> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'djinn-runner-'));
  const dirs = {
    temp: path.join(root, 'temp'),
    toolCache: path.join(root, 'tool-cache'),
    commands: path.join(root, 'commands'),
    home: path.join(root, 'home'),
  };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  const ws = workspace ?? path.join(root, 'workspace');
  await mkdir(ws, { recursive: true });
  const files = {
    output: path.join(dirs.commands, 'output'),
    state: path.join(dirs.commands, 'state'),
    env: path.join(dirs.commands, 'env'),
    summary: path.join(dirs.commands, 'summary'),
    path: path.join(dirs.commands, 'path'),
  };
  for (const f of Object.values(files)) await writeFile(f, '');
  return {
    root,
    workspace: ws,
    temp: dirs.temp,
    toolCache: dirs.toolCache,
    files,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

export interface StepResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
}

export interface StepRun {
  child: ChildProcess;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<StepResult>;
}

export interface StepOptions {
  inputs?: Record<string, string>;
  /** Extra environment (ACTIONS_* for the results service, GITHUB_REPOSITORY, ...). */
  env?: Record<string, string>;
}

function stepEnv(r: Runner, o: StepOptions, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: path.join(r.root, 'home'),
    LANG: 'C.UTF-8',
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_TEMP: r.temp,
    RUNNER_TOOL_CACHE: r.toolCache,
    GITHUB_WORKSPACE: r.workspace,
    GITHUB_OUTPUT: r.files.output,
    GITHUB_STATE: r.files.state,
    GITHUB_ENV: r.files.env,
    GITHUB_PATH: r.files.path,
    GITHUB_STEP_SUMMARY: r.files.summary,
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY: 'octo/example',
    GITHUB_RUN_ID: '1001',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'build',
    ...extra,
    ...o.env,
  };
  const inputs = { ...actionDefaults(), ...o.inputs };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = v;
  return env;
}

function startStep(script: string, r: Runner, o: StepOptions, extra: Record<string, string>): StepRun {
  const child = spawn(process.execPath, [script], { cwd: r.workspace, env: stepEnv(r, o, extra), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
    for (const w of waiters.splice(0))
      if (w.re.test(stdout)) w.resolve();
      else waiters.push(w);
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<StepResult>((resolve) => {
    child.on('close', async (code, signal) => {
      resolve({
        code,
        signal,
        stdout,
        stderr,
        outputs: parseFileCommands(await readFile(r.files.output, 'utf8')),
        state: parseFileCommands(await readFile(r.files.state, 'utf8')),
        summary: await readFile(r.files.summary, 'utf8'),
      });
    });
  });
  return {
    child,
    done,
    waitFor(re, timeoutMs = 120_000) {
      if (re.test(stdout)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}:\n${stdout}\n${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
        void done.then(() => reject(new Error(`step exited before ${re} appeared:\n${stdout}\n${stderr}`)));
      });
    },
  };
}

export function startMain(r: Runner, o: StepOptions = {}): StepRun {
  return startStep(DIST_MAIN, r, o, {});
}

/** The post step, with STATE_<name> from what main saved, as the runner passes it. */
export async function runPost(r: Runner, o: StepOptions = {}): Promise<StepResult> {
  const state = parseFileCommands(await readFile(r.files.state, 'utf8'));
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(state)) extra[`STATE_${k}`] = v;
  return startStep(DIST_POST, r, o, extra).done;
}

/**
 * Runs main to the end. A step still running after `limitMs` gets SIGTERM (as
 * the runner sends on cancellation) and its output so far is returned with a
 * note, so a hang fails the test with a log to read instead of a bare timeout.
 */
export async function runMain(r: Runner, o: StepOptions = {}, limitMs = 180_000): Promise<StepResult> {
  const run = startMain(r, o);
  let killed = false;
  const t = setTimeout(() => {
    killed = true;
    run.child.kill('SIGTERM');
  }, limitMs);
  const res = await run.done;
  clearTimeout(t);
  if (killed) res.stderr += `\nharness: main was still running after ${limitMs / 1000}s and was sent SIGTERM\n`;
  return res;
}
