// A later step of the same job, as the runner starts it: PATH with every
// folder earlier steps added through GITHUB_PATH in front, and the variables
// they wrote to GITHUB_ENV. Runs one command (e.g. `djinn-vm SCRIPT`, which is
// what `shell: djinn-vm {0}` makes of a `run:` step) and collects its output.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseFileCommands, type Runner } from './action-harness.js';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function laterStepEnv(r: Runner): Promise<NodeJS.ProcessEnv> {
  const added = (await readFile(r.files.path, 'utf8')).split('\n').filter(Boolean);
  const exported = parseFileCommands(await readFile(r.files.env, 'utf8'));
  return {
    PATH: [...added.reverse(), process.env.PATH].join(path.delimiter),
    HOME: path.join(r.root, 'home'),
    LANG: 'C.UTF-8',
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    RUNNER_TEMP: r.temp,
    GITHUB_WORKSPACE: r.workspace,
    ...exported,
  };
}

/** Runs `command args...` as a step of the job would. */
export async function runStepCommand(r: Runner, command: string, args: string[], cwd = r.workspace): Promise<CommandResult> {
  const env = await laterStepEnv(r);
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) =>
      reject(new Error(`${command}: ${err.message} (PATH=${env.PATH}; GITHUB_PATH holds ${readFileSync(r.files.path, 'utf8').trim()})`)),
    );
    child.once('close', (c) => resolve(c));
  });
  return { code, stdout, stderr };
}

/** A `run:` step with `shell: djinn-vm {0}`: the runner writes the script to a file in RUNNER_TEMP and passes its path. */
export async function runScriptStep(r: Runner, script: string): Promise<CommandResult> {
  const file = path.join(r.temp, `${randomBytes(8).toString('hex')}.sh`);
  await writeFile(file, script);
  return runStepCommand(r, 'djinn-vm', [file]);
}

/** QEMU processes whose command line mentions `dir` (a runner's folder). */
export function qemuUnder(dir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return (
          readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('qemu-system') && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}
