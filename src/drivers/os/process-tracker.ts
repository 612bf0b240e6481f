// Every process an os-driver build starts, so that destroy() ends them all,
// also those that left the script's process group (`setsid`, `nohup ... &`
// with a double fork). Two nets: a cgroup v2 of its own where the host lets us
// make one (processes cannot leave it), and always a sweep of /proc for the
// build's marker variable, which every process the build starts inherits.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rmdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { sleep } from '../../util/sleep.js';

/** Set in every job's environment; its value names the build. */
export const BUILD_MARKER = 'DJINN_OS_BUILD';

export class ProcessTracker {
  readonly id = randomBytes(8).toString('hex');
  private cgroup: string | undefined;

  /** Makes the build's cgroup when the host allows it (root, a writable cgroup2 mount); silently does without. */
  async start(): Promise<void> {
    const base = await ownCgroupDir();
    if (!base) return;
    const dir = path.join(base, `djinn-os-${this.id}`);
    try {
      await mkdir(dir);
      this.cgroup = dir;
    } catch {
      this.cgroup = undefined;
    }
  }

  env(): Record<string, string> {
    return { [BUILD_MARKER]: this.id };
  }

  /** The command that runs a job's script: inside the cgroup when there is one (the shell moves itself in before it starts the script). */
  command(script: string): [string, string[]] {
    if (!this.cgroup) return ['/bin/sh', [script]];
    return ['/bin/sh', ['-c', 'echo $$ > "$0" 2>/dev/null; exec /bin/sh "$1"', path.join(this.cgroup, 'cgroup.procs'), script]];
  }

  /** Ends every process of the build; never throws. */
  async endAll(): Promise<void> {
    if (this.cgroup) {
      const dir = this.cgroup;
      await writeFile(path.join(dir, 'cgroup.kill'), '1').catch(async () => {
        for (const pid of await cgroupPids(dir)) kill(pid);
      });
      for (let i = 0; i < 40 && (await cgroupPids(dir)).length > 0; i++) await sleep(50);
      await rmdir(dir).catch(() => {});
      this.cgroup = undefined;
    }
    // Again until none is left: a process may fork while we sweep.
    for (let round = 0; round < 10; round++) {
      const pids = await markedPids(this.id);
      if (pids.length === 0) return;
      for (const pid of pids) kill(pid);
      await sleep(20);
    }
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

async function cgroupPids(dir: string): Promise<number[]> {
  const text = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number);
}

/** Our own cgroup v2 folder (from /proc/self/cgroup under the cgroup2 mount), or undefined. */
async function ownCgroupDir(): Promise<string | undefined> {
  try {
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    const mount = mounts
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[2] === 'cgroup2')?.[1];
    if (!mount) return undefined;
    const own = (await readFile('/proc/self/cgroup', 'utf8')).split('\n').find((l) => l.startsWith('0::'));
    if (!own) return undefined;
    return path.join(mount, own.slice(3));
  } catch {
    return undefined;
  }
}

/** Processes whose environment carries the build's marker (not this one). */
async function markedPids(id: string): Promise<number[]> {
  const needle = Buffer.from(`${BUILD_MARKER}=${id}\0`);
  const out: number[] = [];
  const names = await readdir('/proc').catch(() => [] as string[]);
  for (const n of names) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    const env = await readFile(`/proc/${n}/environ`).catch(() => undefined);
    if (env && (env.indexOf(needle) === 0 || env.includes(Buffer.concat([Buffer.from([0]), needle])))) out.push(Number(n));
  }
  return out;
}
