// Big files go through an exec channel running `cat` rather than SFTP. ssh2's
// SFTP client reassembles every 255 KiB reply and answers every request, which
// on a 256 MiB file costs it a quarter of OpenSSH's fastest path (`ssh -c
// aes128-gcm host cat`); a plain byte stream through the channel, read and
// written with 1 MiB file buffers, gets within 10-20 % of it (bench/ssh.ts).
// Small files stay on SFTP: they need no program started in the guest, which
// under software emulation costs more than the copy.
import { createReadStream, createWriteStream } from 'node:fs';
import type { Client, ClientChannel } from 'ssh2';
import { shellQuote } from '../../runner/script.js';
import { openExec } from './connect.js';

/** Files from this size up are copied with `cat`. */
export const BULK_MIN_BYTES = 8 << 20;
const FILE_BUFFER = 1 << 20;
/** The shell's "command not found": no `cat` in the guest, use SFTP instead. */
export const NO_CAT = 127;

/** $1 the guest path (relative to home), $2 the octal mode; parent folders are made. */
const PUT = `f=$1
umask 077
case $f in */*) [ -d "\${f%/*}" ] || mkdir -p -- "\${f%/*}" || exit 1 ;; esac
cat >"$f" || exit 1
exec chmod "$2" -- "$f"`;

export class BulkCopyError extends Error {
  constructor(
    message: string,
    readonly code: number | null,
  ) {
    super(message);
  }
}

/** Runs `command` with `stdin` piped in and stdout piped to `stdout`; resolves with the exit status. */
function pipeThrough(
  client: Client,
  command: string,
  io: { stdin?: NodeJS.ReadableStream; stdout?: NodeJS.WritableStream },
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    let code: number | null = null;
    let stderr = '';
    let pending = io.stdout ? 2 : 1;
    const settle = () => {
      if (--pending === 0) resolve({ code, stderr: stderr.trim() });
    };
    const attach = (ch: ClientChannel) => {
      ch.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 4096) stderr += d.toString();
      });
      ch.on('exit', (n: number | null) => (code = typeof n === 'number' ? n : null));
      ch.on('close', settle);
      // A command that stops reading early: the failed writes are expected, the status tells.
      ch.on('error', () => {});
      if (io.stdout) {
        ch.pipe(io.stdout);
        io.stdout.on('finish', settle);
        io.stdout.on('error', (e: Error) => {
          ch.close();
          reject(e);
        });
      } else ch.resume();
      if (io.stdin) {
        io.stdin.on('error', (e: Error) => {
          ch.close();
          reject(e);
        });
        io.stdin.pipe(ch);
      } else ch.end();
    };
    openExec(client, command, attach).catch(reject);
  });
}

/** Copies a host file to `remote` (relative to home), parent folders made, then chmod `mode`. */
export async function catUpload(client: Client, local: string, remote: string, mode: number): Promise<void> {
  const cmd = `exec /bin/sh -c ${shellQuote(PUT)} sh ${shellQuote(remote)} ${mode.toString(8)}`;
  const r = await pipeThrough(client, cmd, { stdin: createReadStream(local, { highWaterMark: FILE_BUFFER }) });
  if (r.code !== 0) throw new BulkCopyError(`cannot write ${remote} in the machine: ${r.stderr || `exit status ${r.code}`}`, r.code);
}

/** Copies the guest file `remote` (relative to home) to `local`. */
export async function catDownload(client: Client, remote: string, local: string): Promise<void> {
  const cmd = `exec cat -- ${shellQuote(remote)}`;
  const r = await pipeThrough(client, cmd, { stdout: createWriteStream(local, { highWaterMark: FILE_BUFFER }) });
  if (r.code !== 0) throw new BulkCopyError(`cannot read ${remote} in the machine: ${r.stderr || `exit status ${r.code}`}`, r.code);
}
