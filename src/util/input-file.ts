// Reading the small text files a user hands us (manifests, env files,
// driver.conf): bounded in size, and only regular files, so that /dev/zero
// cannot fill memory and a FIFO cannot hang the tool.
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';

/** Larger than any real manifest, env file or driver.conf. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** The file's text, or why it cannot be read (a short phrase: "it is a folder"). */
export function readInputText(file: string, limit = MAX_INPUT_BYTES): { text: string } | { error: string } {
  let real: string;
  try {
    real = realpathSync(file);
    // `-driver /dev/null` is the usual way to say "no configuration".
    if (real === '/dev/null') return { text: '' };
    const st = statSync(real);
    if (st.isDirectory()) return { error: 'it is a folder' };
    if (!st.isFile()) return { error: `it is not a regular file (${kindOf(st)}); give a file` };
    if (st.size > limit) return { error: `it is larger than the limit of ${limit / 1024 / 1024} MiB` };
  } catch (err) {
    return { error: why(err) };
  }
  let fd: number | undefined;
  try {
    fd = openSync(real, 'r');
    // Read at most limit+1 bytes: a file that grows while we read is still bounded.
    const buf = Buffer.alloc(Math.min(limit + 1, statSync(real).size + 1 || 1));
    let total = 0;
    for (;;) {
      if (total === buf.length) break;
      const n = readSync(fd, buf, total, buf.length - total, null);
      if (n === 0) break;
      total += n;
    }
    if (total > limit) return { error: `it is larger than the limit of ${limit / 1024 / 1024} MiB` };
    return { text: buf.subarray(0, total).toString('utf8') };
  } catch (err) {
    return { error: why(err) };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function kindOf(st: import('node:fs').Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a folder';
  if (code === 'ELOOP') return 'too many symbolic links';
  if (code === 'ENOTDIR') return 'a part of the path is not a folder';
  return code ?? (err as Error).message;
}
