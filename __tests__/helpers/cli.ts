// Spawns the bundled CLI (dist/cli.js) exactly as a user would.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  child: ChildProcess;
  /** Resolves when some stdout matches; rejects if the process ends first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<CliResult>;
}

export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    waitFor(re, timeoutMs = 120_000) {
      if (re.test(stdout)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in output:\n${stdout}\n${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
        void done.then(() => reject(new Error(`CLI exited before ${re} appeared:\n${stdout}\n${stderr}`)));
      });
    },
  };
}

export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}

/**
 * The flags that point a build at a project folder: its .djinn.yml and driver.conf, objects read
 * from it, artifacts written to `artifacts` (default DIR/artifacts), and the image cache when given.
 */
export function projectArgs(dir: string, o: { artifacts?: string; cacheDir?: string } = {}): string[] {
  return [
    '-manifest',
    path.join(dir, '.djinn.yml'),
    '-driver',
    path.join(dir, 'driver.conf'),
    '-artifacts',
    o.artifacts ?? path.join(dir, 'artifacts'),
    '-objects',
    dir,
    ...(o.cacheDir ? ['-cache-dir', o.cacheDir] : []),
  ];
}
