// `djinn-vm cp`: files and folders in and out of the kept machine as tar
// streams over the SSH connection (nothing is staged in memory or on disk).
// In: the host's tar packs, the guest's extracts. Out: the guest's tar packs
// and we extract, checking every name: nothing lands outside the destination,
// and symbolic links are made only after every file is written, so that no
// file is written through one.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, rm, stat, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { SshSession } from '../transport/ssh/index.js';
import { shellQuote } from '../core/shell.js';

export class CopyError extends Error {}

// $1 the destination (relative to home), $2 the name packed. Into an existing
// folder (or one named with a trailing /) keeping the name; else under the
// destination's own name, through a temporary folder beside it.
const EXTRACT = `dst=$1 name=$2
cd || exit 1
case $dst in */) mkdir -p -- "$dst" || exit 1 ;; esac
if [ -d "$dst" ]; then exec tar -x -f - -C "$dst"; fi
case $dst in */*) p=\${dst%/*} ;; *) p=. ;; esac
[ -n "$p" ] || p=/
mkdir -p -- "$p" || exit 1
t=$(mktemp -d "$p/.djinn-cp.XXXXXX") || exit 1
tar -x -f - -C "$t" && mv -f -- "$t/$name" "$dst"
s=$?
rm -rf -- "$t"
exit $s`;

// $1 the source (relative to home), trailing slashes dropped: packs it under its own name.
const PACK = `src=$1
cd || exit 1
while :; do case $src in ?*/) src=\${src%/} ;; *) break ;; esac; done
if [ ! -e "$src" ] && [ ! -L "$src" ]; then echo "no such file or folder in the machine: $1" >&2; exit 2; fi
case $src in */*) d=\${src%/*} n=\${src##*/} ;; *) d=. n=$src ;; esac
[ -n "$d" ] || d=/
exec tar -c -f - -C "$d" -- "$n"`;

/** Copies the host file or folder `local` to `remote` in the machine. */
export async function copyIn(session: SshSession, local: string, remote: string, signal: AbortSignal): Promise<void> {
  const abs = path.resolve(local);
  await lstat(abs).catch(() => {
    throw new CopyError(`no such file or folder: ${local}`);
  });
  const name = path.basename(abs);
  const child = spawn('tar', ['-c', '-f', '-', '-C', path.dirname(abs), '--', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Read at once: Node discards what a child printed to a pipe nobody reads when it exits (a small tar exits
  // before the channel opens). The pipe keeps the backpressure.
  const archive = child.stdout.pipe(new PassThrough());
  let tarErr = '';
  child.stderr.on('data', (c: Buffer) => (tarErr += c.toString()));
  const packed = new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new CopyError(`cannot run tar on this machine: ${err.message}`)));
    child.once('close', (code) => resolve(code));
  });
  packed.catch(() => {});
  try {
    const cmd = `exec /bin/sh -c ${shellQuote(EXTRACT)} sh ${shellQuote(remote)} ${shellQuote(name)}`;
    const res = await session.exec(cmd, { stdin: archive, signal });
    const code = await packed;
    if (code !== 0) throw new CopyError(`tar of ${local} failed (exit ${code}): ${tarErr.trim()}`);
    if (res.code !== 0)
      throw new CopyError(`cannot write ${remote} in the machine: ${res.stderr.toString().trim() || `exit status ${res.code}`}`);
  } finally {
    child.kill();
  }
}

/** `name` inside `root`, or an error for a name that would leave it. */
function inside(root: string, rel: string): string {
  const norm = path.posix.normalize(rel);
  if (path.posix.isAbsolute(norm) || norm === '..' || norm.startsWith('../'))
    throw new CopyError(`the machine sent an unsafe name: ${rel}`);
  return path.join(root, norm);
}

/** Copies the machine's file or folder `remote` to `local` on the host. */
export async function copyOut(session: SshSession, remote: string, local: string, signal: AbortSignal): Promise<void> {
  const dest = path.resolve(local);
  const intoFolder = (await stat(dest).catch(() => null))?.isDirectory() ?? false;
  const extract = tar.extract();
  const links: { at: string; target: string }[] = [];
  // The first name is the source's own: it becomes `local`, or goes inside it when `local` is a folder.
  const target = (name: string): string => {
    const parts = path.posix.normalize(name).replace(/\/+$/, '').split('/');
    return intoFolder ? inside(dest, parts.join('/')) : parts.length === 1 ? dest : inside(dest, parts.slice(1).join('/'));
  };
  const written = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const at = target(h.name);
      if (h.type === 'file' || h.type === 'contiguous-file') {
        await mkdir(path.dirname(at), { recursive: true });
        // Replace, never write through, whatever is there (a link, say).
        await rm(at, { force: true });
        await pipeline(entry, createWriteStream(at, { mode: ((h.mode ?? 0o644) & 0o755) | 0o600 }));
        if (h.mtime) await utimes(at, h.mtime, h.mtime);
        continue;
      }
      entry.resume();
      if (h.type === 'directory') await mkdir(at, { recursive: true });
      else if (h.type === 'symlink' && h.linkname) links.push({ at, target: h.linkname });
      else if (h.type === 'link' && h.linkname) throw new CopyError(`${h.name} is a hard link, which djinn-vm cp does not copy`);
      else process.stderr.write(`djinn-vm: skipped ${h.name} (a ${h.type})\n`);
    }
    for (const l of links) {
      await mkdir(path.dirname(l.at), { recursive: true });
      await rm(l.at, { force: true });
      await symlink(l.target, l.at);
    }
  })();
  // A refused name stops the extraction: end the transfer too, and report the name rather than the broken pipe.
  written.catch((err: unknown) => (extract as unknown as Readable).destroy(err as Error));
  const cmd = `exec /bin/sh -c ${shellQuote(PACK)} sh ${shellQuote(remote)}`;
  const res = await session.exec(cmd, { stdout: extract as unknown as NodeJS.WritableStream, signal }).catch(async (err: unknown) => {
    await written;
    throw err;
  });
  if (res.code !== 0) {
    (extract as unknown as Readable).destroy();
    throw new CopyError(`cannot read ${remote} in the machine: ${res.stderr.toString().trim() || `exit status ${res.code}`}`);
  }
  await written;
}
