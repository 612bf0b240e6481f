// Starting and stopping one QEMU process: the launch API the qemu driver (and
// the warm-start code) build on. See docs/qemu.md.
//
// QEMU runs as our child (no -daemonize) so that we keep its exit status and
// stderr; with util-linux's setpriv it also gets SIGKILL if this process dies
// without cleaning up. The serial console goes to a file for diagnostics.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { accelArgs, type Accel } from './accel.js';
import type { TcgThreads } from '../../config/settings.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
const SETPRIV = '/usr/bin/setpriv';
/** QEMU prints this when the host port of the SSH forward is taken. */
export const HOSTFWD_TAKEN = /Could not set up host forwarding rule/;

export interface LaunchSpec {
  image: string;
  format: 'qcow2' | 'raw';
  cpus: number;
  memoryMiB: number;
  accel: Accel;
  /** Software emulation's threading (single unless `multi`). */
  tcgThreads?: TcgThreads;
  /** Host port forwarded (on 127.0.0.1 only) to the guest's port 22. */
  sshPort: number;
  consoleLog: string;
  pidFile: string;
  /** Appended as they are (e.g. `-incoming ...`, `-qmp ...` for warm starts). */
  extraArgs?: string[];
  /** Default true: the image is never written. */
  snapshot?: boolean;
  /** A read-only cloud-init seed volume (catalogue images), attached after the image. */
  seed?: { file: string; id: string };
  /**
   * Start QEMU in its own session, without the parent-death signal and with
   * stderr to `<pidFile>.stderr`, so that it can outlive us (the action's `keep`).
   */
  detached?: boolean;
}

/** Djinn's command line, plus: explicit format, serial console to a file, pidfile, explicit accelerator. */
export function qemuArgs(s: LaunchSpec): string[] {
  const drive = [`file=${escapeOpt(s.image)}`, `format=${s.format}`, 'media=disk', 'if=virtio'];
  if (s.snapshot !== false) drive.push('snapshot=on');
  // prettier-ignore
  return [
    ...accelArgs(s.accel, s.cpus, s.tcgThreads),
    '-display', 'none',
    '-pidfile', s.pidFile,
    '-smp', String(s.cpus),
    '-m', String(s.memoryMiB),
    '-net', 'nic,model=virtio',
    '-net', `user,hostfwd=tcp:127.0.0.1:${s.sshPort}-:22`,
    '-drive', drive.join(','),
    ...(s.seed ? ['-drive', `file=${escapeOpt(s.seed.file)},format=raw,if=virtio,media=disk,readonly=on,id=${s.seed.id}`] : []),
    '-serial', `file:${s.consoleLog}`,
    ...(s.extraArgs ?? []),
  ];
}

/** QEMU option values escape a comma by doubling it. */
function escapeOpt(v: string): string {
  return v.replace(/,/g, ',,');
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** A running QEMU. `exited` settles once, whoever stopped it. */
export class QemuProcess {
  readonly pid: number;
  readonly exited: Promise<QemuExit>;
  private done = false;
  private stderrText = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly spec: LaunchSpec,
    readonly args: string[],
  ) {
    this.pid = child.pid!;
    child.stderr?.on('data', (c: Buffer) => (this.stderrText = (this.stderrText + c.toString()).slice(-8000)));
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.done = true;
        if (spec.detached) this.stderrText = readTail(stderrFile(spec));
        resolve({ code, signal, stderr: this.stderrText.trim() });
      });
    });
  }

  /** Spawns QEMU; rejects only when it cannot be started at all. */
  static async start(spec: LaunchSpec): Promise<QemuProcess> {
    const args = qemuArgs(spec);
    if (spec.detached) return QemuProcess.startDetached(spec, args);
    // setpriv --pdeathsig: QEMU is killed by the kernel if we die without destroy() (SIGKILL, crash).
    const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', QEMU_BINARY, ...args]] : [QEMU_BINARY, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new Error(`cannot start ${QEMU_BINARY} (install qemu-system-x86): ${err.message}`)));
    });
    return new QemuProcess(child, spec, [QEMU_BINARY, ...args]);
  }

  /** A kept machine: its own session, no pipe to us (writing to a closed pipe would kill it), stderr in a file. */
  private static async startDetached(spec: LaunchSpec, args: string[]): Promise<QemuProcess> {
    const fd = openSync(stderrFile(spec), 'w', 0o600);
    try {
      const child = spawn(QEMU_BINARY, args, { stdio: ['ignore', 'ignore', fd], detached: true });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', () => resolve());
        child.once('error', (err) => reject(new Error(`cannot start ${QEMU_BINARY} (install qemu-system-x86): ${err.message}`)));
      });
      return new QemuProcess(child, spec, [QEMU_BINARY, ...args]);
    } finally {
      closeSync(fd);
    }
  }

  /** Lets this process exit while QEMU goes on running (a detached launch only). */
  release(): void {
    this.child.unref();
  }

  get running(): boolean {
    return !this.done;
  }

  get stderr(): string {
    return (this.spec.detached && !this.done ? readTail(stderrFile(this.spec)) : this.stderrText).trim();
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 3000): Promise<QemuExit> {
    if (!this.done) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    return this.exited;
  }

  /** SIGKILL at once (a frozen or SIGSTOPped QEMU ignores SIGTERM); resolves when the process is gone. */
  async kill(): Promise<QemuExit> {
    if (!this.done) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** The last `lines` lines of the serial console. */
  consoleTail(lines = 40): Promise<string> {
    return consoleTail(this.spec.consoleLog, lines);
  }
}

function stderrFile(spec: LaunchSpec): string {
  return `${spec.pidFile}.stderr`;
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-8000);
  } catch {
    return '';
  }
}

export async function consoleTail(file: string, lines = 40): Promise<string> {
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      text = buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  return clean
    .split('\n')
    .filter((l, i, a) => l.trim() !== '' || i < a.length - 1)
    .slice(-lines)
    .join('\n')
    .trimEnd();
}

/** A port that was free a moment ago (QEMU may still lose the race: callers retry on HOSTFWD_TAKEN). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves when 127.0.0.1:port accepts TCP connections (QEMU's forward is up), false if QEMU exits first. */
export async function waitForForward(proc: QemuProcess, port: number, deadline: number, signal?: AbortSignal): Promise<boolean> {
  while (proc.running && Date.now() < deadline && !signal?.aborted) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(500, () => done(false));
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
    });
    if (ok && proc.running) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
