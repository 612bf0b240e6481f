// Test VMs: the `fast` image from our own builder (via scripts/test-image.sh,
// cached outside the repository), a dumb-HTTP git server the guest reaches at
// 10.0.2.2, and helpers to check by pid that no QEMU is left behind.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './cli.js';

let disks: string | undefined;

/** The disks folder holding qemu/x86_64/debian/stable: $DJINN_TEST_DISKS, else built (or found) by scripts/test-image.sh. */
export function testDisks(): string {
  if (disks) return disks;
  const fromEnv = process.env.DJINN_TEST_DISKS;
  if (fromEnv) disks = fromEnv;
  else {
    disks = execFileSync(path.join(ROOT, 'scripts', 'test-image.sh'), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 15 * 60_000,
    })
      .toString()
      .trim();
  }
  if (!existsSync(testImage(disks))) throw new Error(`no test image at ${testImage(disks)}`);
  return disks;
}

export function testImage(d = testDisks()): string {
  return path.join(d, 'qemu', 'x86_64', 'debian', 'stable');
}

/** Pids of QEMU processes whose parent is `ppid` (the CLI starts QEMU as its own child). */
export function qemuChildren(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (comm.startsWith('qemu-system') && Number(fields[1]) === ppid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** True while a process with that pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return cond();
}

/** Serves a folder read-only over HTTP on 127.0.0.1 (git's dumb protocol needs nothing more). */
export async function staticServer(dir: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = path.join(dir, path.normalize(rel));
      if (!file.startsWith(dir + path.sep)) {
        res.writeHead(403).end();
        return;
      }
      try {
        if (!(await stat(file)).isFile()) throw new Error('not a file');
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(await readFile(file));
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
