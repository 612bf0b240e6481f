// A real OpenSSH sshd on a free loopback port, for the transport's tests and
// benchmarks. It runs in its own mount namespace where root's home is a fresh
// temporary folder (so jobs never touch this machine's /root or its .bashrc)
// and, for empty-password login, /etc/shadow is a copy with root's password
// emptied. The system's files are never changed. AcceptEnv is left at its
// default (none), as on an image nobody configured for us.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { silentReporter } from '../../src/core/reporter.js';
import type { SshTarget } from '../../src/transport/ssh/connect.js';

export interface SshdOptions {
  /** Allow root to log in with an empty password (Djinn's images). */
  emptyPassword?: boolean;
  /** Allow public-key login with the generated user keys. Default true. */
  keys?: boolean;
  /** `internal-sftp` (default) or OpenSSH's separate sftp-server program. */
  sftp?: 'internal' | 'server';
  /** Extra sshd_config lines. */
  extra?: string;
  /** Where to make the temporary folder (e.g. /dev/shm for benchmarks); default os.tmpdir(). */
  base?: string;
}

export interface Sshd {
  host: string;
  port: number;
  /** The temporary folder: config, keys, and `home/` (root's home inside sshd's namespace). */
  dir: string;
  /** Root's home as seen from this host. */
  home: string;
  /** ed25519 user key, OpenSSH format. */
  ed25519Key: string;
  /** RSA user key, PEM (PKCS#1) format. */
  rsaPemKey: string;
  ed25519KeyFile: string;
  pid: number;
  /** The per-connection sshd processes (children of the listener). */
  sessionPids(): number[];
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function bannerSeen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => (sock.destroy(), resolve(false)), 1000);
    sock.on('data', (c: Buffer) => (clearTimeout(t), sock.destroy(), resolve(c.toString().startsWith('SSH-'))));
    sock.on('error', () => (clearTimeout(t), resolve(false)));
  });
}

function keygen(file: string, args: string[]): string {
  execFileSync('ssh-keygen', ['-q', '-N', '', '-f', file, ...args]);
  return readFileSync(file, 'utf8');
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const dir = mkdtempSync(path.join(opts.base ?? os.tmpdir(), 'djinn-sshd-'));
  const home = path.join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation folder
  keygen(path.join(dir, 'hostkey'), ['-t', 'ed25519']);
  const ed25519Key = keygen(path.join(dir, 'id_ed25519'), ['-t', 'ed25519', '-C', 'djinn-test']);
  const rsaPemKey = keygen(path.join(dir, 'id_rsa'), ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-C', 'djinn-test']);
  const authorized =
    opts.keys === false ? '' : readFileSync(path.join(dir, 'id_ed25519.pub'), 'utf8') + readFileSync(path.join(dir, 'id_rsa.pub'), 'utf8');
  writeFileSync(path.join(dir, 'authorized_keys'), authorized);
  const shadow = readFileSync('/etc/shadow', 'utf8').replace(/^root:[^:]*:/m, 'root::');
  writeFileSync(path.join(dir, 'shadow'), shadow, { mode: 0o640 });

  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const config = [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/hostkey`,
      `PidFile ${dir}/sshd.pid`,
      'PermitRootLogin yes',
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      `PubkeyAuthentication ${opts.keys === false ? 'no' : 'yes'}`,
      `PasswordAuthentication ${opts.emptyPassword ? 'yes' : 'no'}`,
      `PermitEmptyPasswords ${opts.emptyPassword ? 'yes' : 'no'}`,
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'UseDNS no',
      `Subsystem sftp ${opts.sftp === 'server' ? '/usr/lib/openssh/sftp-server' : 'internal-sftp'}`,
      'MaxSessions 100',
      'MaxStartups 100:30:200',
      'LogLevel ERROR',
      opts.extra ?? '',
    ].join('\n');
    writeFileSync(path.join(dir, 'sshd_config'), `${config}\n`);
    // A private mount namespace: root's home and shadow are swapped for sshd and its children only.
    const child: ChildProcess = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        'mount --bind "$1" /etc/shadow && mount --bind "$2" /root && exec /usr/sbin/sshd -D -e -f "$3"',
        'sh',
        path.join(dir, 'shadow'),
        home,
        path.join(dir, 'sshd_config'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    let exited = false;
    child.on('exit', () => (exited = true));
    for (let i = 0; i < 100 && !exited; i++) {
      if (await bannerSeen(port)) {
        const pid = child.pid!;
        return {
          host: '127.0.0.1',
          port,
          dir,
          home,
          ed25519Key,
          rsaPemKey,
          ed25519KeyFile: path.join(dir, 'id_ed25519'),
          pid,
          sessionPids: () => childrenOf(pid),
          stop: async () => {
            if (!exited) {
              const gone = new Promise((r) => child.once('exit', r));
              for (const p of childrenOf(pid)) killQuietly(p);
              child.kill('SIGTERM');
              await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
              if (!exited) child.kill('SIGKILL');
            }
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    if (tries >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start: ${stderr}`);
    }
  }
}

/** Direct children of `pid` (pgrep -P); [] when there are none. */
export function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

/** Where the transport logs in to `sshd`: root by its ed25519 key, 20 s to connect, a silent reporter unless `extra` says otherwise. */
export function targetFor(sshd: Sshd, extra: Partial<SshTarget> = {}): SshTarget {
  return {
    host: sshd.host,
    port: sshd.port,
    user: 'root',
    privateKey: sshd.ed25519Key,
    deadline: Date.now() + 20_000,
    reporter: silentReporter,
    ...extra,
  };
}
