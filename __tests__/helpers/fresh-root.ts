// A fresh Debian root, as a stock machine has it: minbase with sudo,
// ca-certificates, git and procps, a user `runner` with passwordless sudo,
// this host's node binary, and (because this machine's registries sit behind
// their own certificate authority) the host's CA bundle. Nothing else comes
// from the host; the root's apt uses the mirror the host's apt uses (the only
// one reachable here). Commands run in it by chroot with /proc, /sys and /dev
// mounted; everything is unmounted and removed afterwards, also on failure.
// The minbase tarball is cached under /var/cache/djinn-ci like the test image.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const CACHE_ROOT = process.env.DJINN_CI_CACHE || '/var/cache/djinn-ci';
const INCLUDE = 'sudo,ca-certificates,git,procps';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The Debian mirror and suite the host's apt uses. */
export function hostMirror(): { mirror: string; suite: string } {
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f))];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    const deb822 = /^URIs:\s*(\S+\/debian)\s*$[\s\S]*?^Suites:\s*(\S+)/m.exec(text);
    if (deb822) return { mirror: deb822[1], suite: deb822[2] };
    const line = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s+(\S+)/m.exec(text);
    if (line) return { mirror: line[1], suite: line[2] };
  }
  return { mirror: 'http://deb.debian.org/debian', suite: 'bookworm' };
}

function listDir(d: string): string[] {
  try {
    return readdirSync(d).filter((f) => f.endsWith('.list') || f.endsWith('.sources'));
  } catch {
    return [];
  }
}

/** The cached minbase tarball, made with mmdebstrap when missing (a minute; hold /work/vm.lock). */
export async function baseTarball(): Promise<string> {
  const { mirror, suite } = hostMirror();
  const key = createHash('sha256').update(`${suite} ${mirror} ${INCLUDE}`).digest('hex').slice(0, 16);
  const tar = path.join(CACHE_ROOT, `fresh-root-${key}.tar`);
  if (existsSync(tar) && statSync(tar).isFile()) return tar;
  mkdirSync(CACHE_ROOT, { recursive: true });
  // mmdebstrap picks the output format from the name: keep .tar last.
  const partial = path.join(CACHE_ROOT, `fresh-root-${key}.partial-${process.pid}.tar`);
  await execFileP(
    'mmdebstrap',
    ['--variant=minbase', '--mode=root', `--include=${INCLUDE}`, suite, partial, `deb ${mirror} ${suite} main`],
    {
      maxBuffer: 64 << 20,
    },
  );
  await execFileP('mv', [partial, tar]);
  return tar;
}

export interface FreshRoot {
  dir: string;
  /** Runs a command in the root as `user` (root or runner) with exactly this environment (plus PATH, HOME, NODE_EXTRA_CA_CERTS). */
  run(user: string, cmd: string[], env?: Record<string, string>, opts?: { cwd?: string; limitMs?: number }): Promise<RunResult>;
  /** QEMU processes running from this root. */
  qemuProcesses(): number[];
  /** Processes running from this root whose command line matches. */
  processes(cmdline: RegExp): number[];
  remove(): Promise<void>;
}

export interface RunResult {
  code: number | null;
  output: string;
}

async function sh(cmd: string, args: string[]): Promise<void> {
  await execFileP(cmd, args, { maxBuffer: 64 << 20 });
}

/** Mount points at or below dir, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

export async function makeFreshRoot(parent: string): Promise<FreshRoot> {
  const tar = await baseTarball();
  mkdirSync(parent, { recursive: true });
  const dir = await mkdtemp(path.join(parent, 'fresh-root-'));
  const remove = async () => {
    for (const m of mountsUnder(dir)) await sh('umount', ['-l', m]).catch(() => {});
    if (mountsUnder(dir).length) throw new Error(`still mounted under ${dir}: ${mountsUnder(dir).join(', ')}`);
    await sh('rm', ['-rf', '--one-file-system', dir]);
  };
  try {
    await sh('tar', ['-C', dir, '-xpf', tar]);
    copyFileSync(process.execPath, path.join(dir, 'usr/local/bin/node'));
    await chmod(path.join(dir, 'usr/local/bin/node'), 0o755);
    copyFileSync(CA_BUNDLE, path.join(dir, CA_BUNDLE));
    // Name resolution for the mirror (what any machine's network setup gives it).
    if (!existsSync(path.join(dir, 'etc/resolv.conf')) && existsSync('/etc/resolv.conf'))
      copyFileSync('/etc/resolv.conf', path.join(dir, 'etc/resolv.conf'));
    await sh('chroot', [dir, 'useradd', '-m', '-s', '/bin/bash', 'runner']);
    await writeFile(path.join(dir, 'etc/sudoers.d/runner'), 'runner ALL=(ALL) NOPASSWD:ALL\n', { mode: 0o440 });
    await sh('mount', ['-t', 'proc', 'proc', path.join(dir, 'proc')]);
    for (const d of ['sys', 'dev']) {
      await sh('mount', ['--rbind', `/${d}`, path.join(dir, d)]);
      await sh('mount', ['--make-rslave', path.join(dir, d)]);
    }
  } catch (err) {
    await remove();
    throw err;
  }
  const run: FreshRoot['run'] = (user, cmd, env = {}, opts = {}) => {
    const home = user === 'root' ? '/root' : `/home/${user}`;
    const base = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: home,
      LANG: 'C.UTF-8',
      NODE_EXTRA_CA_CERTS: CA_BUNDLE,
      ...env,
    };
    // env -C, not a shell: sh would drop INPUT_IMAGE-SERVER and the like (names with hyphens), which the runner passes.
    const inner = ['/usr/bin/env', '-i', '-C', opts.cwd ?? home, ...Object.entries(base).map(([k, v]) => `${k}=${v}`), ...cmd];
    const args = user === 'root' ? [dir, ...inner] : [dir, '/usr/sbin/runuser', '-u', user, '--', ...inner];
    return new Promise((resolve) => {
      const child = spawn('chroot', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const t = setTimeout(
        () => {
          output += `\nharness: still running after ${(opts.limitMs ?? 0) / 1000}s: SIGTERM\n`;
          child.kill('SIGTERM');
        },
        opts.limitMs ?? 20 * 60_000,
      );
      child.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, output });
      });
    });
  };
  const processes = (re: RegExp) =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/root`) === dir && re.test(readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' '));
        } catch {
          return false;
        }
      })
      .map(Number);
  const qemuProcesses = () => processes(/^qemu-system/);
  return { dir, run, qemuProcesses, processes, remove };
}

/** Prints a phase's time for the coordinator's report (no assertion on it). */
export async function timed<T>(label: string, f: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await f();
  } finally {
    console.log(`phase ${label}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}
