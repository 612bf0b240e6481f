// `workspace: auto`: when a manifest source is the workflow's own repository,
// the runner's checkout (GITHUB_WORKSPACE, with uncommitted changes and its
// .git) is copied into the machine at that source's folder instead of being
// cloned, so a pull request builds its own commit and a private repository
// needs no credentials in the guest. The copy is a tar stream.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Driver } from '../drivers/driver.js';
import type { Plan } from '../manifest/plan.js';
import type { Source } from '../manifest/types.js';
import type { Reporter } from '../core/reporter.js';
import { formatDuration } from '../util/duration.js';
import { formatBytes } from '../util/bytes.js';
import { shellQuote } from '../core/shell.js';

function normalise(url: string): string {
  let u = url
    .trim()
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  // git@host:owner/repo → https://host/owner/repo
  const scp = /^[\w.-]+@([\w.-]+):(?!\/)(.+)$/.exec(u);
  if (scp) u = `https://${scp[1]}/${scp[2]}`;
  u = u.replace(/^(ssh|git):\/\/([\w.-]+@)?/, 'https://').replace(/^http:\/\//, 'https://');
  return u.toLowerCase();
}

/** True when `url` names GITHUB_SERVER_URL/GITHUB_REPOSITORY (with or without .git). */
export function isOwnRepository(url: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const server = env.GITHUB_SERVER_URL || 'https://github.com';
  const repo = env.GITHUB_REPOSITORY;
  if (!repo) return false;
  return normalise(url) === normalise(`${server}/${repo}`);
}

export interface WorkspaceCopy {
  source: Source;
  /** Guest folder, relative to the login user's home. */
  dir: string;
}

/** Removes the clone jobs of the workflow's own repository from the plan; returns what to copy instead. */
export function takeOverOwnSources(plan: Plan, env: NodeJS.ProcessEnv = process.env): WorkspaceCopy[] {
  const copies: WorkspaceCopy[] = [];
  for (const stage of plan.stages) {
    stage.jobs = stage.jobs.filter((j) => {
      if (!j.source || !isOwnRepository(j.source.url, env)) return true;
      const repoName = (env.GITHUB_REPOSITORY ?? '').split('/').pop() ?? 'workspace';
      copies.push({ source: j.source, dir: j.source.dir || repoName });
      return false;
    });
  }
  plan.stages = plan.stages.filter((s) => s.jobs.length > 0 || s.name !== 'setup');
  return copies;
}

/** `tar -c` of the workspace as a stream; `bytes()` says how much went through once it ends. */
function tarStream(workspace: string): { stream: Readable; bytes: () => number; done: Promise<void>; kill: () => void } {
  const child = spawn('tar', ['-C', workspace, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let stderr = '';
  const out = new PassThrough();
  child.stdout.on('data', (c: Buffer) => (bytes += c.length));
  child.stdout.pipe(out);
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar of ${workspace} failed (exit ${code}): ${stderr.trim()}`)),
    );
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    out.destroy();
  };
  return { stream: out, bytes: () => bytes, done, kill };
}

/** Copies the workspace into the machine for each own source: streamed when the driver can, else upload + extract. */
export async function copyWorkspace(
  driver: Driver,
  copies: WorkspaceCopy[],
  workspace: string,
  tempDir: string,
  reporter: Reporter,
  signal?: AbortSignal,
): Promise<void> {
  for (const c of copies) {
    const started = Date.now();
    if (c.source.ref)
      reporter.info(
        `Note: ${c.source.url} is this workflow's repository: the checkout is copied, ref "${c.source.ref}" is not checked out.`,
      );
    reporter.info(`Copying the workspace ${workspace} into ${c.dir} (instead of cloning ${c.source.url})...`);
    // Emptied first: a machine restored from a stage state still has the copy of the run that saved it.
    const own = !['.', '..', '/', ''].includes(path.posix.normalize(c.dir)) && !path.posix.normalize(c.dir).startsWith('../');
    const wipe = own ? `rm -rf ${shellQuote(c.dir)} && ` : '';
    const extract = `${wipe}mkdir -p ${shellQuote(c.dir)} && tar -C ${shellQuote(c.dir)} -xof -`;
    const tar = tarStream(workspace);
    try {
      await copyOne(driver, c, extract, tar, tempDir, signal);
    } finally {
      // Never leave tar behind when the other side failed or stopped reading.
      tar.kill();
    }
    reporter.info(`Copied the workspace into ${c.dir}: ${formatBytes(tar.bytes())} in ${formatDuration(Date.now() - started)}.`);
  }
}

async function copyOne(
  driver: Driver,
  c: WorkspaceCopy,
  extract: string,
  tar: ReturnType<typeof tarStream>,
  tempDir: string,
  signal?: AbortSignal,
): Promise<void> {
  {
    if (driver.exec) {
      tar.done.catch(() => {}); // reported below, after the guest's side
      const res = await driver.exec(extract, { stdin: tar.stream, signal });
      if (res.code !== 0)
        throw new Error(
          `copying the workspace into ${c.dir} failed (exit ${res.code}): ${res.stderr.toString().trim() || res.stdout.toString().trim()}`,
        );
      await tar.done;
    } else {
      const file = path.join(tempDir, 'workspace.tar');
      await Promise.all([pipeline(tar.stream, createWriteStream(file)), tar.done]);
      const guestTar = '.djinn-workspace.tar';
      try {
        await driver.upload(file, guestTar, 0o600);
      } finally {
        await rm(file, { force: true });
      }
      let out = '';
      const res = await driver.execute(
        {
          stage: 'setup',
          name: 'workspace',
          scriptName: 'workspace.sh',
          script: `#!/bin/sh\nexec 2>&1\nset -e\n${extract.replace(/ -$/, ` ${guestTar}`)}\nrm -f ${guestTar}\n`,
          env: [],
        },
        { write: (chunk) => (out += chunk.toString()) },
        signal ?? new AbortController().signal,
      );
      if (res.exitCode !== 0)
        throw new Error(`copying the workspace into ${c.dir} failed (exit ${res.exitCode ?? res.error}): ${out.trim()}`);
    }
  }
}
