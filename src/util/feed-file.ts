// Feeds a file into a Writable (an SSH channel) through a few buffers it
// reuses. fs.ReadStream hands over a new buffer for every read, each kept
// until a garbage collection frees it, so an upload keeps touching memory the
// process has not used lately, which on machines that hand idle memory back to
// their host costs CPU. A buffer is read into again only once the writer has
// called back for it (ssh2 calls back once it has copied the data into its
// packets). Two reused buffers cut our CPU per 256 MiB upload by about a fifth
// on the development machine (docs/ssh.md, bench/ssh.ts).
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';

const BUFFER_BYTES = 1 << 20;
const BUFFERS = 2;

/**
 * Writes the file at `path` into `dest`, then ends `dest`. Stops quietly when
 * `dest` fails or `signal` aborts (the reader went away: the caller judges
 * that from its exit status); rejects when the file cannot be read.
 */
export async function feedFile(path: string, dest: Writable, signal?: AbortSignal): Promise<void> {
  const file = await open(path, 'r');
  try {
    const free = Array.from({ length: BUFFERS }, () => Buffer.allocUnsafeSlow(BUFFER_BYTES));
    let writing = 0;
    let stopped = signal?.aborted ?? false;
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const stop = () => {
      stopped = true;
      notify();
    };
    signal?.addEventListener('abort', stop, { once: true });
    dest.once('close', stop);
    /** Resolves once `ready()` holds or feeding stopped. */
    const until = async (ready: () => boolean) => {
      while (!ready() && !stopped) await new Promise<void>((r) => (wake = r));
    };
    try {
      for (;;) {
        await until(() => free.length > 0);
        if (stopped) return;
        const buf = free.pop()!;
        const { bytesRead } = await file.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        writing++;
        dest.write(buf.subarray(0, bytesRead), (err) => {
          writing--;
          if (err) stopped = true;
          free.push(buf);
          notify();
        });
      }
      await until(() => writing === 0);
      if (!stopped) dest.end();
    } finally {
      signal?.removeEventListener('abort', stop);
      dest.off('close', stop);
    }
  } finally {
    await file.close();
  }
}
