// A small streaming HTTP GET over node:http/https: redirects, an idle timeout
// that also covers the body, abort, and the environment's proxy (proxy.ts).
// The body is never buffered here.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { proxyAgent } from './proxy.js';

export interface RequestOptions {
  headers?: Record<string, string>;
  method?: 'GET' | 'HEAD';
  /** Longest silence (connect, headers or between body chunks) before giving up. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  maxRedirects?: number;
}

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer for ${Math.round(ms / 1000)}s`);
    this.name = 'TimeoutError';
  }
}

/** Resolves with the response (after redirects); `res.url` is not set by Node, so the final URL is returned too. */
export async function request(url: string, opts: RequestOptions): Promise<{ res: IncomingMessage; url: string }> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(current, opts);
    const loc = res.headers.location;
    if (res.statusCode && [301, 302, 303, 307, 308].includes(res.statusCode) && loc) {
      res.resume();
      if (hop >= (opts.maxRedirects ?? 5)) throw new Error(`too many redirects from ${url}`);
      current = new URL(loc, current).toString();
      continue;
    }
    return { res, url: current };
  }
}

function requestOnce(url: string, opts: RequestOptions): Promise<IncomingMessage> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
  if (!lib) return Promise.reject(new Error(`unsupported URL scheme ${u.protocol} in ${url}`));
  return new Promise((resolve, reject) => {
    const agent = proxyAgent(u);
    const req = lib.request(u, {
      ...(agent ? { agent } : {}),
      method: opts.method ?? 'GET',
      headers: { 'user-agent': 'djinn-vm-action', ...opts.headers },
      signal: opts.signal,
    });
    // Applies to the socket, so a stalled body fails as well as a stalled connect.
    req.setTimeout(opts.idleTimeoutMs, () => req.destroy(new TimeoutError(opts.idleTimeoutMs)));
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
}

/** Reads a small body (listings, error pages) with a cap, so a hostile server cannot fill memory. */
export async function readSmallBody(res: IncomingMessage, limit = 4 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      throw new Error(`answer larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
