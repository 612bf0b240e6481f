// Image downloads honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (src/images/fetch/proxy.ts).
// The proxy here is a real HTTP proxy on loopback written for the test; the
// image host name (images.example.test) exists only inside it, so a download
// that succeeds must have gone through it.
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readSmallBody, request } from '../src/images/fetch/http.js';
import { bypassesProxy, proxyFor } from '../src/images/fetch/proxy.js';

describe('choosing a proxy', () => {
  const url = (u: string) => new URL(u);
  it('takes HTTPS_PROXY for https and HTTP_PROXY for http, lower case first', () => {
    const env = { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2', HTTP_PROXY: 'http://plain:3' };
    expect(proxyFor(url('https://images.example.com/x'), env)).toBe('http://lower:2');
    expect(proxyFor(url('http://images.example.com/x'), env)).toBe('http://plain:3');
    expect(proxyFor(url('https://images.example.com/x'), {})).toBeUndefined();
  });

  it('never proxies loopback, and honours NO_PROXY names, domain suffixes, ports and *', () => {
    const env = { https_proxy: 'http://p:1', no_proxy: 'internal.example, .corp.example:8443 mirror.example:443' };
    for (const u of ['https://127.0.0.1:9/x', 'https://localhost/x', 'https://[::1]:9/x']) expect(bypassesProxy(url(u), env)).toBe(true);
    expect(proxyFor(url('https://internal.example/x'), env)).toBeUndefined();
    expect(proxyFor(url('https://a.internal.example/x'), env)).toBeUndefined();
    expect(proxyFor(url('https://notinternal.example/x'), env)).toBe('http://p:1');
    expect(proxyFor(url('https://x.corp.example:8443/x'), env)).toBeUndefined();
    expect(proxyFor(url('https://x.corp.example/x'), env)).toBe('http://p:1');
    expect(proxyFor(url('https://mirror.example/x'), env)).toBeUndefined();
    expect(proxyFor(url('https://anything.example/x'), { ...env, no_proxy: '*' })).toBeUndefined();
  });
});

describe('downloading through a proxy', () => {
  let origin: http.Server;
  let proxy: http.Server;
  let originPort = 0;
  let proxyPort = 0;
  const seen: string[] = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    origin = http.createServer((req, res) => res.end(`image bytes for ${req.url}`));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originPort = (origin.address() as net.AddressInfo).port;
    // Absolute-URI requests (plain http through a proxy) and CONNECT (https).
    proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const target = new URL(req.url!);
      if (target.hostname !== 'images.example.test') {
        res.writeHead(502).end();
        return;
      }
      const up = http.request({ host: '127.0.0.1', port: originPort, path: target.pathname, method: req.method }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    });
    proxy.on('connect', (req, sock: net.Socket) => {
      seen.push(`CONNECT ${req.url}`);
      sock.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyPort = (proxy.address() as net.AddressInfo).port;
  });
  afterEach(() => {
    for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  afterAll(() => {
    origin.close();
    proxy.close();
  });

  it('an http image URL goes through HTTP_PROXY', async () => {
    process.env.http_proxy = `http://127.0.0.1:${proxyPort}`;
    const { res } = await request(`http://images.example.test:${originPort}/debian/stable`, { idleTimeoutMs: 10_000 });
    expect(res.statusCode).toBe(200);
    expect(await readSmallBody(res)).toBe('image bytes for /debian/stable');
    expect(seen).toContain(`GET http://images.example.test:${originPort}/debian/stable`);
  });

  it('an https image URL asks HTTPS_PROXY for a tunnel (CONNECT)', async () => {
    process.env.https_proxy = `http://127.0.0.1:${proxyPort}`;
    // The test proxy refuses the tunnel (502): the request fails one way or the other, after asking it.
    const outcome = await request('https://images.example.test/debian/stable', { idleTimeoutMs: 10_000 }).then(
      ({ res }) => (res.resume(), res.statusCode),
      () => 'error',
    );
    expect(outcome).not.toBe(200);
    expect(seen).toContain('CONNECT images.example.test:443');
  });

  it('NO_PROXY and loopback hosts go direct', async () => {
    process.env.http_proxy = `http://127.0.0.1:${proxyPort}`;
    process.env.no_proxy = 'example.test';
    const before = seen.length;
    await expect(request(`http://images.example.test:${originPort}/x`, { idleTimeoutMs: 5_000 })).rejects.toThrow();
    const { res } = await request(`http://127.0.0.1:${originPort}/direct`, { idleTimeoutMs: 10_000 });
    expect(await readSmallBody(res)).toBe('image bytes for /direct');
    expect(seen.length).toBe(before);
  });
});
