// One command over an exec channel, to completion: stdin from a string, a
// stream (with backpressure) or a feeder, stdout collected or piped to a
// stream, stderr collected, and the exit status.
import type { Writable } from 'node:stream';
import type { Client } from 'ssh2';
import { openExec } from './connect.js';

/**
 * Writes a command's stdin itself and ends it (see util/feed-file.ts); `stopped`
 * aborts once the channel has closed. Rejecting fails the exec.
 */
export type StdinFeeder = (stdin: Writable, stopped: AbortSignal) => Promise<void>;

export interface ExecOutput {
  code: number | null;
  /** Empty when `stdout` was given a stream. */
  stdout: Buffer;
  stderr: Buffer;
}

export interface ExecCollectOptions {
  stdin?: NodeJS.ReadableStream | string | StdinFeeder;
  /** Where stdout goes instead of memory (a file, for big output); resolves once it has finished. */
  stdout?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** exec with stdout/stderr collected (keep them small, or give `stdout` a stream); `stdin` may be a string, a stream (e.g. a tar) or a feeder. */
export async function execCollect(client: Client, command: string, opts: ExecCollectOptions = {}): Promise<ExecOutput> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let code: number | null = null;
  let closed!: () => void;
  const channelClosed = new AbortController();
  const isClosed = new Promise<void>((r) => (closed = r)).then(() => channelClosed.abort());
  const stdoutDone = opts.stdout ? new Promise<void>((r) => opts.stdout!.once('finish', r)) : Promise.resolve();
  const ch = await openExec(client, command, (c) => {
    if (opts.stdout) c.pipe(opts.stdout);
    else c.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.on('exit', (n: number | null) => (code = typeof n === 'number' ? n : null));
    c.on('close', () => closed());
  });
  return new Promise((resolve, reject) => {
    // On abort, do not wait for the server's close: it may wait for the command first.
    const onAbort = () => {
      channelClosed.abort();
      ch.close();
      resolve({ code: null, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // A command that exits before reading all its stdin: the writes that fail then are expected.
    ch.on('error', () => {});
    opts.stdout?.on('error', (e: Error) => {
      ch.close();
      reject(e);
    });
    void Promise.all([isClosed, stdoutDone]).then(() => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (typeof opts.stdin === 'object') opts.stdin.unpipe?.(ch);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    if (typeof opts.stdin === 'function')
      opts.stdin(ch, channelClosed.signal).catch((e: Error) => {
        ch.close();
        reject(e);
      });
    else if (typeof opts.stdin === 'string') ch.end(opts.stdin);
    else if (opts.stdin) {
      opts.stdin.on('error', (e: Error) => {
        ch.close();
        reject(e);
      });
      opts.stdin.pipe(ch);
    } else ch.end();
  });
}
