// Big files go through an exec channel running `cat` rather than SFTP. ssh2's
// SFTP client reassembles every 255 KiB reply and answers every request, which
// on a 256 MiB file costs it a quarter of OpenSSH's fastest path (`ssh -c
// aes128-gcm host cat`); a plain byte stream through the channel, read and
// written with 1 MiB file buffers, gets within 10-20 % of it (bench/ssh.ts).
// Uploads read the file through two reused buffers (util/feed-file.ts).
// Small files stay on SFTP: they need no program started in the guest, which
// under software emulation costs more than the copy.
import type { Client } from 'ssh2';
import { shellQuote } from '../../core/shell.js';
import { BatchedFileWriter } from '../../util/batched-file-writer.js';
import { feedFile } from '../../util/feed-file.js';
import { execCollect, type ExecOutput } from './exec.js';

/** Files from this size up are copied with `cat`. */
export const BULK_MIN_BYTES = 8 << 20;
/** The shell's "command not found": no `cat` in the guest, use SFTP instead. */
const NO_CAT = 127;

/** $1 the guest path (relative to home), $2 the octal mode; parent folders are made. */
const PUT = `f=$1
umask 077
case $f in */*) [ -d "\${f%/*}" ] || mkdir -p -- "\${f%/*}" || exit 1 ;; esac
cat >"$f" || exit 1
exec chmod "$2" -- "$f"`;

/** true when copied; false when the guest has no `cat` (copy another way); throws on any other failure. */
function copied(r: ExecOutput, what: string): boolean {
  if (r.code === 0) return true;
  if (r.code === NO_CAT) return false;
  throw new Error(`${what}: ${r.stderr.toString().trim() || `exit status ${r.code}`}`);
}

/** Copies a host file to `remote` (relative to home), parent folders made, then chmod `mode`. */
export async function catUpload(client: Client, local: string, remote: string, mode: number): Promise<boolean> {
  const cmd = `exec /bin/sh -c ${shellQuote(PUT)} sh ${shellQuote(remote)} ${mode.toString(8)}`;
  const r = await execCollect(client, cmd, { stdin: (ch, stopped) => feedFile(local, ch, stopped) });
  return copied(r, `cannot write ${remote} in the machine`);
}

/** Copies the guest file `remote` (relative to home) to `local`. */
export async function catDownload(client: Client, remote: string, local: string): Promise<boolean> {
  const r = await execCollect(client, `exec cat -- ${shellQuote(remote)}`, {
    stdout: new BatchedFileWriter(local),
  });
  return copied(r, `cannot read ${remote} in the machine`);
}
