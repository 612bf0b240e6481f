// Streams an image to `<dest>.part-<pid>` and renames it to `dest` only when
// it is complete and verified. Retries with backoff; after a dropped
// connection it resumes with Range (If-Range guards against a changed file).
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Reporter } from '../../core/reporter.js';
import { DownloadError, ImageNotFoundError, ImageRejectedError } from './errors.js';
import { request, TimeoutError } from './http.js';
import { Progress } from './progress.js';
import { checkQcow2, describeStart, hasQcow2Magic } from './qcow2.js';
import { verifyImage } from '../verify.js';
import { BatchedFileWriter } from '../../util/batched-file-writer.js';
import { sleep } from '../../util/sleep.js';

export interface DownloadOptions {
  url: string;
  /** Final path; its folder must exist. Written only once the file is verified. */
  dest: string;
  /** What to call the image in messages, e.g. debian/stable. */
  label: string;
  reporter: Reporter;
  /** Pinned SHA-256 (hex); the file must have it. */
  sha256?: string;
  /** A digest from a distribution's checksum file (catalogue images), checked while downloading. */
  listed?: { algorithm: 'sha256' | 'sha512'; hex: string; source: string };
  /** Conditional headers (If-None-Match / If-Modified-Since): a 304 returns `notModified`. */
  conditional?: { etag?: string; lastModified?: string };
  /** Explains a 404 (e.g. the server's listing); called only then. */
  onNotFound?: (url: string) => Promise<ImageNotFoundError>;
  idleTimeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
  signal?: AbortSignal;
}

export interface DownloadResult {
  notModified: boolean;
  /** `dest`, verified (unset when notModified). */
  path?: string;
  size: number;
  sha256: string;
  etag?: string;
  lastModified?: string;
  /** URL after redirects. */
  url: string;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_ATTEMPTS = 5;
export const DEFAULT_BACKOFF_MS = 1_000;

/** A failure that is worth another attempt; `resumable` keeps the bytes already written. */
class Retry extends Error {}

export function normalizeSha256(text: string): string {
  const hex = text
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new ImageRejectedError(`"${text}" is not a SHA-256 digest (64 hexadecimal digits).`);
  return hex;
}

export async function downloadImage(opts: DownloadOptions): Promise<DownloadResult> {
  const pinned = opts.sha256 ? normalizeSha256(opts.sha256) : undefined;
  const attempts = opts.attempts ?? DEFAULT_ATTEMPTS;
  const backoff = opts.backoffMs ?? DEFAULT_BACKOFF_MS;
  const part = `${opts.dest}.part-${process.pid}`;
  const t = new Transfer(opts, await open(part, 'w'));
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        if ((await t.attempt()) === 'not-modified') return { notModified: true, size: 0, sha256: '', url: t.url, ...t.validator };
        break;
      } catch (err) {
        if (!(err instanceof Retry)) throw err;
        if (opts.signal?.aborted) throw new DownloadError(`downloading ${opts.label} was cancelled.`, opts.url, false);
        if (attempt >= attempts) {
          const got = t.total !== undefined ? ` (${t.have} of ${t.total} bytes received)` : '';
          throw new DownloadError(
            `downloading ${opts.label} from ${opts.url} failed after ${attempts} attempts: ${err.message}${got}.`,
            opts.url,
            true,
          );
        }
        const wait = backoff * 2 ** (attempt - 1);
        opts.reporter.warn(
          `downloading ${opts.label} failed (${err.message}); ` +
            `${t.have > 0 ? `resuming at byte ${t.have}` : 'trying again'} in ${(wait / 1000).toFixed(1)}s (attempt ${attempt + 1} of ${attempts}).`,
        );
        await sleep(wait, opts.signal);
      }
    }
    const sha256 = await t.verify(part, pinned);
    await rename(part, opts.dest);
    return { notModified: false, path: opts.dest, size: t.have, sha256, url: t.url, ...t.validator };
  } finally {
    await t.close();
    await rm(part, { force: true });
  }
}

/** One download's file, digests and position, across its attempts. */
class Transfer {
  have = 0;
  total: number | undefined;
  validator: { etag?: string; lastModified?: string } = {};
  /** The URL after redirects, once a response came. */
  url: string;
  private hash: Hash = createHash('sha256');
  private listedHash: Hash | undefined;
  private readonly progress: Progress;

  constructor(
    private readonly opts: DownloadOptions,
    private fh: FileHandle | undefined,
  ) {
    this.url = opts.url;
    this.listedHash = opts.listed ? createHash(opts.listed.algorithm) : undefined;
    this.progress = new Progress(opts.reporter, opts.label);
  }

  /** One request: the whole file, or the rest of it after a drop. Throws Retry for what another attempt may fix. */
  async attempt(): Promise<'done' | 'not-modified'> {
    const { res, url } = await request(this.opts.url, {
      headers: this.headers(),
      idleTimeoutMs: this.opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      signal: this.opts.signal,
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException)?.code;
      // An unknown host or a closed port will not change in a few seconds: fail at once so a fallback can start.
      if (code === 'ENOTFOUND' || code === 'ECONNREFUSED')
        throw new DownloadError(`downloading ${this.opts.label} from ${this.opts.url} failed: ${networkReason(err)}.`, this.opts.url, true);
      throw new Retry(networkReason(err));
    });
    this.url = url;
    if ((await this.accept(res)) === 'not-modified') return 'not-modified';
    const hashes = { update: (c: Buffer) => (this.hash.update(c), this.listedHash?.update(c)) };
    const onBytes = (n: number) => {
      this.have += n;
      this.progress.update(this.have, this.total);
    };
    await receive(res, this.fh!, hashes, onBytes, () => this.have, this.opts.label, url);
    if (this.total !== undefined && this.have < this.total)
      throw new Retry(`the connection closed after ${this.have} of ${this.total} bytes`);
    if (this.total !== undefined && this.have > this.total)
      throw new ImageRejectedError(`${this.opts.label} from ${url}: the server announced ${this.total} bytes but sent ${this.have}.`);
    this.progress.update(this.have, this.total, true);
    return 'done';
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = {};
    const conditional = this.opts.conditional;
    if (this.have > 0) {
      headers.range = `bytes=${this.have}-`;
      const v = this.validator.etag ?? this.validator.lastModified;
      if (v) headers['if-range'] = v;
    } else if (conditional) {
      if (conditional.etag) headers['if-none-match'] = conditional.etag;
      if (conditional.lastModified) headers['if-modified-since'] = conditional.lastModified;
    }
    return headers;
  }

  /** What the status says: a body to receive (from the start or from `have`), not modified, or an error. */
  private async accept(res: IncomingMessage): Promise<'body' | 'not-modified'> {
    const { label } = this.opts;
    const url = this.url;
    const status = res.statusCode ?? 0;
    if (status === 304 && this.have === 0 && this.opts.conditional) {
      res.resume();
      return 'not-modified';
    }
    if (status === 404 || status === 410) {
      res.resume();
      throw this.opts.onNotFound
        ? await this.opts.onNotFound(url)
        : new ImageNotFoundError(`${url} does not exist (HTTP ${status}).`, url, []);
    }
    if (status === 416 && this.have > 0) {
      // We asked for the rest of the announced size and the server has no more: it announced the wrong size.
      res.resume();
      const real = /\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))?.[1];
      throw new DownloadError(
        `downloading ${label} from ${url} failed: the server announced ${this.total} bytes ` +
          `but ${real ? `has ${real}` : `sent only ${this.have}`}; the file was discarded.`,
        url,
        true,
      );
    }
    if (status >= 500 || status === 429 || status === 408) {
      res.resume();
      throw new Retry(`the server answered HTTP ${status}`);
    }
    if (status === 206 && this.have > 0) {
      const range = parseContentRange(res.headers['content-range']);
      if (!range || range.start !== this.have) {
        res.resume();
        await this.restart();
        throw new Retry('the server resumed at the wrong offset');
      }
      this.total = range.total ?? this.total;
      return 'body';
    }
    if (status === 200) {
      if (this.have > 0) this.opts.reporter.info(`Download of ${label} starts over (the server did not resume at byte ${this.have}).`);
      await this.restart();
      const len = res.headers['content-length'];
      this.total = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined;
      this.validator = { etag: header(res, 'etag'), lastModified: header(res, 'last-modified') };
      return 'body';
    }
    res.resume();
    throw new DownloadError(`downloading ${label} from ${url} failed: the server answered HTTP ${status}.`, url, false);
  }

  private async restart(): Promise<void> {
    await this.fh!.truncate(0);
    this.hash = createHash('sha256');
    this.listedHash = this.opts.listed ? createHash(this.opts.listed.algorithm) : undefined;
    this.have = 0;
  }

  /** The complete file: a self-contained qcow2 with the pinned or listed digest. Returns its SHA-256. */
  async verify(part: string, pinned: string | undefined): Promise<string> {
    const { label, listed } = this.opts;
    // Closed strictly here: a failed close must not pass for a complete file.
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
    const sha256 = this.hash.digest('hex');
    await checkQcow2(part, `${label} from ${this.url}`);
    // qemu-img must also read it as a self-contained qcow2 before it may be used.
    await verifyImage(part, 'qcow2').catch((err: unknown) => {
      throw new ImageRejectedError(
        `${label} from ${this.url} was refused: ${(err as Error).message.split(part).join('the downloaded file')}`,
      );
    });
    if (pinned && sha256 !== pinned) {
      throw new ImageRejectedError(
        `${label} from ${this.url} has SHA-256 ${sha256}, but ${pinned} was pinned (-image-sha256); the file was discarded.`,
      );
    }
    if (listed && !pinned) {
      const got = this.listedHash!.digest('hex');
      if (got !== listed.hex.toLowerCase()) {
        const alg = listed.algorithm.toUpperCase().replace('SHA', 'SHA-');
        throw new ImageRejectedError(
          `${label} from ${this.url} has ${alg} ${got}, but the checksum file ${listed.source} lists ${listed.hex}; ` +
            'the file was discarded (a wrong checksum file or a damaged download).',
        );
      }
    }
    return sha256;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close().catch(() => {});
  }
}

/** Copies the body to the file from byte `have()` on; refuses at once a body that does not start like qcow2. */
async function receive(
  res: IncomingMessage,
  fh: FileHandle,
  hash: { update(c: Buffer): unknown },
  onBytes: (n: number) => void,
  have: () => number,
  label: string,
  url: string,
): Promise<void> {
  let head: Buffer | undefined = have() === 0 ? Buffer.alloc(0) : undefined;
  // Explicit offsets: after a restart the file was truncated, and a handle's own position would leave a hole.
  const file = new BatchedFileWriter({ fd: fh.fd, start: have(), name: label });
  const written = finished(file);
  written.catch(() => {}); // awaited below, after the body
  let failure: unknown;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (head) {
        head = Buffer.concat([head, chunk]);
        if (head.length >= 4) {
          if (!hasQcow2Magic(head)) {
            res.destroy();
            throw new ImageRejectedError(`${label} from ${url} is not a qcow2 image (it starts with ${describeStart(head)}); refusing it.`);
          }
          head = undefined;
        }
      }
      if (file.errored) break;
      hash.update(chunk);
      onBytes(chunk.length);
      if (!file.write(chunk)) await once(file, 'drain');
    }
  } catch (err) {
    failure = err;
  }
  // Everything counted is on disk before the next attempt resumes after it; a write error ends the download.
  file.end();
  await written;
  if (failure instanceof ImageRejectedError) throw failure;
  if (failure !== undefined) throw new Retry(networkReason(failure));
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function parseContentRange(v: string | undefined): { start: number; total?: number } | undefined {
  const m = v && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

function networkReason(err: unknown): string {
  if (err instanceof TimeoutError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET' || e?.message === 'aborted') return 'the connection was dropped';
  if (e?.code === 'ECONNREFUSED') return 'the connection was refused';
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return `the host name could not be resolved (${e.code})`;
  return e?.message ?? String(err);
}
