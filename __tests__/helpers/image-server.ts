// A loopback HTTP server speaking Djinn's image server protocol (imgsrv):
// GET/HEAD /qemu/x86_64/<name> serves a file with Range, ETag and
// Last-Modified; `Accept: application/json` on /qemu/x86_64 lists the images;
// /moved/<name> redirects to /qemu/x86_64/<name>.
// It can misbehave on command (drop, wrong length, garbage, slow, 404, 500),
// which a real server cannot be made to do on demand.
import { execFileSync } from 'node:child_process';
import { createReadStream, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedImage {
  file: string;
  /** Sent as ETag unless `validators` is false. */
  etag: string;
  modTime: Date;
  /** false: send neither ETag nor Last-Modified (revalidation must use the listing's mod_time). */
  validators: boolean;
}

export type Misbehaviour =
  /** Send this many body bytes, then cut the connection. */
  | { kind: 'drop'; afterBytes: number }
  /** Announce `extra` bytes more than the file has, send the file, then cut the connection. */
  | { kind: 'wrong-length'; extra: number }
  /** Answer 200 with an HTML page instead of the image. */
  | { kind: 'garbage' }
  /** Wait before answering. */
  | { kind: 'slow'; delayMs: number }
  /** Wait until release() before answering. */
  | { kind: 'hold' }
  | { kind: 'status'; code: number }
  /** Ignore Range and If-Range: always send the whole file with 200. */
  | { kind: 'no-range' };

export interface LoggedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  status?: number;
}

export interface ImageServer {
  url: string;
  images: Map<string, ServedImage>;
  requests: LoggedRequest[];
  /** Adds or replaces an image; a new ETag and mod_time come from the file's content. */
  serve(name: string, file: string, opts?: { validators?: boolean; modTime?: Date }): void;
  /** The next `times` image GETs misbehave this way (Infinity: until cleared). */
  misbehave(m: Misbehaviour, times?: number): void;
  clear(): void;
  /** Lets held requests ({kind: 'hold'}) answer. */
  release(): void;
  /** GETs of image files (not listings, not HEAD). */
  imageGets(): LoggedRequest[];
  close(): Promise<void>;
}

function etagOf(file: string): string {
  const h = createHash('sha256');
  h.update(`${file}:${statSync(file).size}:${statSync(file).mtimeMs}`);
  return `"${h.digest('hex').slice(0, 16)}"`;
}

export async function startImageServer(): Promise<ImageServer> {
  const images = new Map<string, ServedImage>();
  const requests: LoggedRequest[] = [];
  let queue: { m: Misbehaviour; left: number }[] = [];
  const held: (() => void)[] = [];

  const nextMisbehaviour = (): Misbehaviour | undefined => {
    const q = queue[0];
    if (!q) return undefined;
    q.left--;
    if (q.left <= 0) queue.shift();
    return q.m;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, log: LoggedRequest) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = decodeURIComponent(url.pathname).replace(/\/+$/, '');
    const wantsJson = (req.headers.accept ?? '').includes('application/json');
    if (wantsJson && ['', '/qemu', '/qemu/x86_64'].includes(p)) {
      const list = [...images.entries()].map(([name, img]) => ({
        driver: 'qemu',
        category: 'x86_64',
        group: name.split('/')[0],
        name,
        link: '',
        mod_time: img.modTime.toISOString(),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(list));
      return;
    }
    if (p.startsWith('/moved/')) {
      res.writeHead(302, { location: `/qemu/x86_64/${p.slice('/moved/'.length)}` });
      res.end();
      return;
    }
    const prefix = '/qemu/x86_64/';
    const img = p.startsWith(prefix) ? images.get(p.slice(prefix.length)) : undefined;
    const bad = req.method === 'GET' ? nextMisbehaviour() : undefined;
    if (bad?.kind === 'slow') await new Promise((r) => setTimeout(r, bad.delayMs));
    if (bad?.kind === 'hold') await new Promise<void>((r) => held.push(r));
    if (bad?.kind === 'status') {
      res.writeHead(bad.code, { 'content-type': 'text/plain' });
      res.end(`status ${bad.code}\n`);
      return;
    }
    if (!img) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found\n');
      return;
    }
    if (bad?.kind === 'garbage') {
      const page = '<!DOCTYPE html><html><body>Sorry, we moved.</body></html>\n'.repeat(50);
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) });
      res.end(page);
      return;
    }
    const size = statSync(img.file).size;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/x-qemu-disk', 'accept-ranges': 'bytes' };
    const lastModified = img.modTime.toUTCString();
    if (img.validators) {
      headers.etag = img.etag;
      headers['last-modified'] = lastModified;
      const inm = req.headers['if-none-match'];
      const ims = req.headers['if-modified-since'];
      if ((inm && inm === img.etag) || (!inm && ims && Date.parse(ims) >= Math.floor(img.modTime.getTime() / 1000) * 1000)) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
    }
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const rangeOk =
      range && bad?.kind !== 'no-range' && (!ifRange || (img.validators && (ifRange === img.etag || ifRange === lastModified)));
    if (rangeOk) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    const length = end - start + 1;
    headers['content-length'] = bad?.kind === 'wrong-length' ? length + bad.extra : length;
    res.writeHead(status, headers);
    log.status = status;
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(img.file, { start, end });
    if (bad?.kind === 'drop') {
      let sent = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const room = bad.afterBytes - sent;
        if (room <= 0) break;
        const part = chunk.subarray(0, room);
        sent += part.length;
        if (!res.write(part)) await new Promise((r) => res.once('drain', r));
      }
      // Let the bytes leave before cutting the connection.
      await new Promise((r) => setTimeout(r, 50));
      res.socket?.destroy();
      stream.destroy();
      return;
    }
    stream.pipe(res, { end: bad?.kind !== 'wrong-length' });
    if (bad?.kind === 'wrong-length') stream.on('end', () => setTimeout(() => res.socket?.destroy(), 50));
  };

  const server = http.createServer((req, res) => {
    const log: LoggedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers };
    requests.push(log);
    handle(req, res, log).catch(() => res.socket?.destroy());
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    images,
    requests,
    serve(name, file, opts = {}) {
      images.set(name, {
        file,
        etag: etagOf(file),
        modTime: opts.modTime ?? new Date(Math.floor(statSync(file).mtimeMs / 1000) * 1000),
        validators: opts.validators ?? true,
      });
    },
    misbehave(m, times = 1) {
      queue.push({ m, left: times });
    },
    clear() {
      queue = [];
    },
    release() {
      for (const r of held.splice(0)) r();
    },
    imageGets() {
      return requests.filter((r) => r.method === 'GET' && r.path.startsWith('/qemu/x86_64/'));
    },
    close() {
      for (const r of held.splice(0)) r();
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/**
 * Makes a small real qcow2 image with qemu-img: `dataKiB` of random data
 * (so the file has a size worth streaming), or a `backing` file reference.
 */
export function makeQcow2(file: string, opts: { dataKiB?: number; backing?: string; seed?: number } = {}): string {
  if (opts.backing) {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', opts.backing, file], { stdio: 'pipe' });
    return file;
  }
  const raw = `${file}.raw`;
  const size = (opts.dataKiB ?? 256) * 1024;
  const data = Buffer.alloc(size);
  // A cheap deterministic pattern; the seed makes "a new version" differ.
  let x = (opts.seed ?? 1) * 2654435761;
  for (let i = 0; i < size; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    data.writeUInt32LE(x, i);
  }
  writeFileSync(raw, data);
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file], { stdio: 'pipe' });
  rmSync(raw);
  return file;
}
