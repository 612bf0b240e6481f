// Downloads and the CLI image cache against a loopback image server (the
// public server cannot be made to misbehave on demand, so tests use our own
// server speaking its protocol) and real qcow2 files made with qemu-img.
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Writable } from 'node:stream';
import { TerminalReporter } from '../src/cli/terminal-reporter.js';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DriverSettings } from '../src/config/settings.js';
import { merged, testSettings, type SettingsChanges } from './helpers/settings.js';
import { UsageError } from '../src/core/errors.js';
import { ImageCache } from '../src/images/cache/store.js';
import { cachedOrDownloaded, DownloadError, ImageNotFoundError, ImageRejectedError, originFor } from '../src/images/fetch/index.js';
import { silentReporter, type Reporter } from '../src/core/reporter.js';
import { makeQcow2, startImageServer, type ImageServer } from './helpers/image-server.js';
import { ROOT } from './helpers/cli.js';

let server: ImageServer;
let work: string;
let stable: string;
let edge: string;
let cacheDir: string;
let tempDir: string;

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentReporter, lines, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) };
}

function settings(extra: SettingsChanges = {}): DriverSettings {
  return testSettings(tempDir, merged({ cacheDir, image: { server: server.url } }, extra));
}

const fast = { backoffMs: 20, idleTimeoutMs: 5_000 };

/** Every file (and empty folder) under the cache folder, to prove nothing partial is left behind. */
function cacheFiles(): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() || (d.isDirectory() && readdirSync(path.join(d.parentPath, d.name)).length === 0))
    .map((d) => path.relative(cacheDir, path.join(d.parentPath, d.name)));
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'djinn-image-fetch-'));
  stable = makeQcow2(path.join(work, 'stable.qcow2'), { dataKiB: 1024, seed: 1 });
  edge = makeQcow2(path.join(work, 'edge.qcow2'), { dataKiB: 64, seed: 2 });
  server = await startImageServer();
});

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  server.images.clear();
  server.requests.length = 0;
  server.clear();
  server.serve('debian/stable', stable);
  server.serve('alpine/edge', edge);
  cacheDir = mkdtempSync(path.join(work, 'cache-'));
  tempDir = mkdtempSync(path.join(work, 'tmp-'));
});

describe('download from the image server', () => {
  it('downloads on a miss, verifies, caches, and the second fetch is a cache hit without a request', async () => {
    const rep = recorder();
    const first = await cachedOrDownloaded({ name: 'debian/stable', settings: settings(), reporter: rep, http: fast });
    expect(first.source).toBe('download');
    expect(first.format).toBe('qcow2');
    expect(first.path.startsWith(cacheDir)).toBe(true);
    expect(sha(first.path)).toBe(sha(stable));
    expect(first.sha256).toBe(sha(stable));
    // Progress: a line per ~10 %, ending at 100 %.
    const progress = rep.lines.filter((l) => l.startsWith('Downloading debian/stable:'));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.length).toBeLessThanOrEqual(11);
    expect(progress.at(-1)).toMatch(/100% \(/);

    const gets = server.imageGets().length;
    const second = await cachedOrDownloaded({ name: 'debian/stable', settings: settings(), reporter: recorder(), http: fast });
    expect(second.source).toBe('cache');
    expect(second.path).toBe(first.path);
    expect(server.requests.length).toBe(gets);
    expect(cacheFiles().sort()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/debian\/stable\/_image\.qcow2$/),
        expect.stringMatching(/debian\/stable\/_meta\.json$/),
      ]),
    );
    expect(cacheFiles()).toHaveLength(2);
  });

  it('shows progress through the terminal reporter: a bar on a terminal, a line per ~10 % otherwise', async () => {
    const collect = (tty: boolean) => {
      let text = '';
      const out = new Writable({
        write(c, _e, cb) {
          text += c.toString();
          cb();
        },
      }) as Writable & { isTTY?: boolean };
      if (tty) out.isTTY = true;
      return { out, text: () => text };
    };
    const tty = collect(true);
    await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings(),
      reporter: new TerminalReporter({ out: tty.out, err: tty.out }),
      http: fast,
    });
    expect(tty.text().endsWith('\x1b[K\n')).toBe(true);
    expect(tty.text()).toMatch(/\rDownloading debian\/stable \[#{30}\] 100% 1\.\d MiB of 1\.\d MiB.\[K\n$/);
    expect(
      tty
        .text()
        .split('\n')
        .filter((l) => l.includes('[#')),
    ).toHaveLength(1);

    const pipe = collect(false);
    await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings({ cacheDir: mkdtempSync(path.join(work, 'cache-')) }),
      reporter: new TerminalReporter({ out: pipe.out, err: pipe.out }),
      http: fast,
    });
    const lines = pipe.text().trim().split('\n');
    expect(pipe.text()).not.toContain('\r');
    expect(lines.filter((l) => /^Downloading debian\/stable: \d+% /.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatch(/^Downloading debian\/stable: 100% \(1\.\d MiB of 1\.\d MiB\)$/);
  });

  it('resumes with Range after the connection drops halfway', async () => {
    server.misbehave({ kind: 'drop', afterBytes: 300_000 });
    const rep = recorder();
    const r = await cachedOrDownloaded({ name: 'debian/stable', settings: settings(), reporter: rep, http: fast });
    expect(sha(r.path)).toBe(sha(stable));
    const gets = server.imageGets();
    expect(gets).toHaveLength(2);
    expect(gets[1].headers.range).toBe('bytes=300000-');
    expect(gets[1].headers['if-range']).toBe(server.images.get('debian/stable')!.etag);
    expect(gets[1].status).toBe(206);
    expect(
      rep.lines.some((l) => /warning: downloading debian\/stable failed \(the connection was dropped\); resuming at byte 300000/.test(l)),
    ).toBe(true);
  });

  it('starts over when the server will not resume', async () => {
    server.misbehave({ kind: 'drop', afterBytes: 200_000 });
    server.misbehave({ kind: 'no-range' });
    const r = await cachedOrDownloaded({ name: 'debian/stable', settings: settings(), reporter: recorder(), http: fast });
    expect(sha(r.path)).toBe(sha(stable));
    expect(server.imageGets()[1].status).toBe(200);
  });

  it('refuses a file shorter than the length the server announced, and leaves nothing behind', async () => {
    server.misbehave({ kind: 'wrong-length', extra: 1000 }, Infinity);
    const err = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings(),
      reporter: recorder(),
      http: { ...fast, attempts: 3 },
    }).catch((e: unknown) => e);
    const size = statSync(edge).size;
    expect(err).toBeInstanceOf(DownloadError);
    // It first tries to resume the "missing" bytes, which the server does not have.
    expect((err as Error).message).toContain(`failed: the server announced ${size + 1000} bytes but has ${size}; the file was discarded.`);
    expect(server.imageGets()[1].headers.range).toBe(`bytes=${size}-`);
    expect(cacheFiles()).toEqual([]);
  });

  it('gives up after its attempts when every connection drops, and leaves nothing behind', async () => {
    server.misbehave({ kind: 'drop', afterBytes: 0 }, Infinity);
    const err = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings(),
      reporter: recorder(),
      http: { ...fast, attempts: 3 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/failed after 3 attempts: the connection (was dropped|closed after 0 of \d+ bytes)/);
    expect(server.imageGets()).toHaveLength(3);
    expect(cacheFiles()).toEqual([]);
  });

  it('refuses garbage at once, without retrying, and caches nothing', async () => {
    server.misbehave({ kind: 'garbage' }, Infinity);
    const err = await cachedOrDownloaded({ name: 'debian/stable', settings: settings(), reporter: recorder(), http: fast }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as Error).message).toMatch(
      /debian\/stable from http:\/\/127\.0\.0\.1:\d+\/qemu\/x86_64\/debian\/stable is not a qcow2 image \(it starts with "<!DOCTYPE html><"\); refusing it\./,
    );
    expect(server.imageGets()).toHaveLength(1);
    expect(cacheFiles()).toEqual([]);
  });

  it('refuses an image with a backing file', async () => {
    const child = makeQcow2(path.join(work, 'child.qcow2'), { backing: stable });
    server.serve('debian/sneaky', child);
    const err = await cachedOrDownloaded({ name: 'debian/sneaky', settings: settings(), reporter: recorder(), http: fast }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as Error).message).toContain(`has a backing file (${stable})`);
    expect(cacheFiles()).toEqual([]);
  });

  it('refuses a file that starts like qcow2 but that qemu-img cannot read', async () => {
    const fake = path.join(work, 'fake.qcow2');
    const buf = Buffer.alloc(4096, 0x41);
    buf.write('QFI\xfb', 0, 'latin1');
    buf.writeUInt32BE(3, 4);
    buf.fill(0, 8, 104);
    writeFileSync(fake, buf);
    server.serve('debian/fake', fake);
    const err = await cachedOrDownloaded({ name: 'debian/fake', settings: settings(), reporter: recorder(), http: fast }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as Error).message).toMatch(
      /^debian\/fake from http:.* was refused: qemu-img cannot read image the downloaded file as qcow2: /,
    );
    expect(cacheFiles()).toEqual([]);
  });

  it('checks a pinned SHA-256: a mismatch names both digests, a match is cached and reused without revalidation', async () => {
    const wrong = 'a'.repeat(64);
    const err = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings({ image: { sha256: wrong } }),
      reporter: recorder(),
      http: fast,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as Error).message).toContain(`has SHA-256 ${sha(stable)}, but ${wrong} was pinned`);
    expect(cacheFiles()).toEqual([]);

    const ok = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings({ image: { sha256: sha(stable).toUpperCase(), maxAgeMs: 0 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(ok.source).toBe('download');
    const before = server.requests.length;
    await new Promise((r) => setTimeout(r, 5));
    const again = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings({ image: { sha256: sha(stable), maxAgeMs: 0 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(again.source).toBe('cache');
    expect(server.requests.length).toBe(before);
  });

  it('rejects a malformed pinned digest as a usage error', async () => {
    const err = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings({ image: { sha256: 'abc' } }),
      reporter: recorder(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).format()).toBe('-image-sha256: "abc" is not a SHA-256 digest (64 hexadecimal digits).');
    expect(server.requests).toHaveLength(0);
  });

  it('says which images the server has on a 404', async () => {
    const err = await cachedOrDownloaded({ name: 'debian/sid', settings: settings(), reporter: recorder(), http: fast }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageNotFoundError);
    expect((err as Error).message).toMatch(
      new RegExp(`image server ${server.url} has no image debian/sid \\(.*answered 404\\); it has: alpine/edge, debian/stable\\.`),
    );
    expect((err as ImageNotFoundError).available).toEqual(['alpine/edge', 'debian/stable']);
  });

  it('retries a 500 with backoff and succeeds; gives up after its attempts when it persists', async () => {
    server.misbehave({ kind: 'status', code: 500 }, 2);
    const r = await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    expect(sha(r.path)).toBe(sha(edge));
    expect(server.imageGets()).toHaveLength(3);

    server.requests.length = 0;
    server.misbehave({ kind: 'status', code: 503 }, Infinity);
    const rep = recorder();
    const err = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings(),
      reporter: rep,
      http: { ...fast, attempts: 4 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toContain('failed after 4 attempts: the server answered HTTP 503');
    expect(server.imageGets()).toHaveLength(4);
    // Backoff doubles: 20ms, 40ms, 80ms.
    expect(rep.lines.filter((l) => l.startsWith('warning:')).map((l) => /in ([\d.]+)s/.exec(l)?.[1])).toEqual(['0.0', '0.0', '0.1']);
  });

  it('waits for a slow server within the timeout, and gives up on one slower than the timeout', async () => {
    server.misbehave({ kind: 'slow', delayMs: 300 });
    const r = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings(),
      reporter: recorder(),
      http: { ...fast, idleTimeoutMs: 3_000 },
    });
    expect(r.source).toBe('download');

    server.misbehave({ kind: 'slow', delayMs: 1_500 }, Infinity);
    const err = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings(),
      reporter: recorder(),
      http: { ...fast, idleTimeoutMs: 300, attempts: 2 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toContain('failed after 2 attempts: no answer for 0s');
  });

  it('downloads from an explicit -image-url, cached apart from the server copy', async () => {
    const url = `${server.url}/qemu/x86_64/alpine/edge`;
    const r = await cachedOrDownloaded({ name: 'debian/stable', settings: settings({ image: { url } }), reporter: recorder(), http: fast });
    expect(sha(r.path)).toBe(sha(edge));
    const s = await cachedOrDownloaded({ name: 'debian/stable', settings: settings(), reporter: recorder(), http: fast });
    expect(s.source).toBe('download');
    expect(sha(s.path)).toBe(sha(stable));
    expect(s.path).not.toBe(r.path);
    const again = await cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings({ image: { url } }),
      reporter: recorder(),
      http: fast,
    });
    expect(again).toMatchObject({ source: 'cache', path: r.path });
  });

  it('follows a redirect and records the final URL', async () => {
    const r = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ image: { url: `${server.url}/moved/alpine/edge` } }),
      reporter: recorder(),
      http: fast,
    });
    expect(sha(r.path)).toBe(sha(edge));
    expect(JSON.parse(readFileSync(path.join(path.dirname(r.path), '_meta.json'), 'utf8')).url).toBe(
      `${server.url}/qemu/x86_64/alpine/edge`,
    );
  });

  it('stops when the build is cancelled, leaving nothing behind', async () => {
    server.misbehave({ kind: 'hold' });
    const ctl = new AbortController();
    const pending = cachedOrDownloaded({
      name: 'debian/stable',
      settings: settings(),
      reporter: recorder(),
      http: fast,
      signal: ctl.signal,
    }).catch((e: unknown) => e);
    while (!server.imageGets().length) await new Promise((r) => setTimeout(r, 20));
    ctl.abort();
    const err = await pending;
    server.release();
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toBe('downloading debian/stable was cancelled.');
    expect(server.imageGets()).toHaveLength(1);
    expect(cacheFiles()).toEqual([]);
  });

  it('downloads into the build temp folder when there is no cache folder', async () => {
    const r = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ cacheDir: undefined }),
      reporter: recorder(),
      http: fast,
    });
    expect(r.source).toBe('download');
    expect(path.dirname(r.path)).toBe(tempDir);
    expect(sha(r.path)).toBe(sha(edge));
  });
});

describe('revalidation', () => {
  it('does not ask the server while the copy is younger than -image-max-age', async () => {
    await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    const n = server.requests.length;
    const r = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ image: { maxAgeMs: 3_600_000 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(r.source).toBe('cache');
    expect(server.requests.length).toBe(n);
  });

  it('asks with If-None-Match after -image-max-age: 304 keeps the copy, a changed ETag fetches the new one', async () => {
    const first = await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    const metaFile = path.join(path.dirname(first.path), '_meta.json');
    const checked1 = JSON.parse(readFileSync(metaFile, 'utf8')).checkedAt;
    await new Promise((r) => setTimeout(r, 10));

    const r304 = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ image: { maxAgeMs: 0 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(r304.source).toBe('cache');
    const last = server.imageGets().at(-1)!;
    expect(last.headers['if-none-match']).toBe(server.images.get('alpine/edge')!.etag);
    expect(JSON.parse(readFileSync(metaFile, 'utf8')).checkedAt > checked1).toBe(true);

    const v2 = makeQcow2(path.join(work, 'edge-v2.qcow2'), { dataKiB: 96, seed: 3 });
    server.serve('alpine/edge', v2);
    const changed = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ image: { maxAgeMs: 0 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(changed.source).toBe('download');
    expect(changed.path).toBe(first.path);
    expect(sha(changed.path)).toBe(sha(v2));
    expect(changed.sha256).toBe(sha(v2));
    expect(JSON.parse(readFileSync(metaFile, 'utf8')).etag).toBe(server.images.get('alpine/edge')!.etag);
  });

  it("uses the listing's mod_time when the server sends no validators", async () => {
    server.serve('alpine/edge', edge, { validators: false, modTime: new Date('2026-01-01T00:00:00Z') });
    const first = await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    expect(JSON.parse(readFileSync(path.join(path.dirname(first.path), '_meta.json'), 'utf8')).modTime).toBe('2026-01-01T00:00:00.000Z');
    const gets = server.imageGets().length;
    const same = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ image: { maxAgeMs: 0 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(same.source).toBe('cache');
    expect(server.imageGets().length).toBe(gets);

    const v2 = makeQcow2(path.join(work, 'edge-v3.qcow2'), { dataKiB: 80, seed: 4 });
    server.serve('alpine/edge', v2, { validators: false, modTime: new Date('2026-02-01T00:00:00Z') });
    const changed = await cachedOrDownloaded({
      name: 'alpine/edge',
      settings: settings({ image: { maxAgeMs: 0 } }),
      reporter: recorder(),
      http: fast,
    });
    expect(changed.source).toBe('download');
    expect(sha(changed.path)).toBe(sha(v2));
  });

  it('keeps using the cached copy, with a warning, when the server cannot be reached', async () => {
    await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    server.misbehave({ kind: 'status', code: 500 }, Infinity);
    const rep = recorder();
    const r = await cachedOrDownloaded({ name: 'alpine/edge', settings: settings({ image: { maxAgeMs: 0 } }), reporter: rep, http: fast });
    expect(r.source).toBe('cache');
    expect(sha(r.path)).toBe(sha(edge));
    expect(
      rep.lines.some((l) => l.startsWith('warning: could not revalidate cached image alpine/edge (downloading alpine/edge from')),
    ).toBe(true);
  });
});

describe('the cache', () => {
  it('two processes fetching one image at once end with one good copy and one download', async () => {
    // The first download is held by the server until the second process says it is waiting for the lock.
    server.misbehave({ kind: 'hold' });
    const children: ChildProcess[] = [];
    const start = () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(ROOT, '__tests__/helpers/image-fetch-child.ts'), server.url, 'debian/stable', cacheDir, tempDir],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      let out = '';
      let err = '';
      const seen: { re: RegExp; resolve: () => void }[] = [];
      child.stdout!.on('data', (c: Buffer) => {
        out += c;
        for (const w of seen.filter((w) => w.re.test(out))) w.resolve();
      });
      child.stderr!.on('data', (c: Buffer) => (err += c));
      const done = new Promise<{ ok: boolean; result?: { path: string; source: string }; error?: string }>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', () => {
          const last = out.split('\n').find((l) => l.startsWith('result: '));
          if (last) resolve(JSON.parse(last.slice(8)));
          else reject(new Error(`child output: ${out}\n${err}`));
        });
      });
      const waitFor = (re: RegExp) => new Promise<void>((resolve) => (re.test(out) ? resolve() : seen.push({ re, resolve })));
      return { done, waitFor, output: () => out };
    };
    try {
      const a = start();
      await a.waitFor(/^line: Downloading image debian\/stable from /m);
      const b = start();
      await b.waitFor(/^line: Waiting for another djinn process \(pid \d+\) that is fetching debian\/stable\.\.\.$/m);
      server.release();
      const [ra, rb] = await Promise.all([a.done, b.done]);
      expect(ra).toMatchObject({ ok: true, result: { source: 'download' } });
      expect(rb).toMatchObject({ ok: true, result: { source: 'cache', path: ra.result!.path } });
      expect(server.imageGets()).toHaveLength(1);
      expect(sha(ra.result!.path)).toBe(sha(stable));
      expect(cacheFiles().sort()).toEqual([expect.stringMatching(/_image\.qcow2$/), expect.stringMatching(/_meta\.json$/)]);
    } finally {
      server.release();
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    }
  });

  it('breaks the lock of a process that died', async () => {
    const origin = originFor(settings());
    const cache = new ImageCache(cacheDir);
    const dir = cache.entryDir(origin, 'alpine/edge');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    // A pid that cannot exist (above the kernel's pid_max).
    writeFileSync(path.join(dir, '_lock'), JSON.stringify({ pid: 99_999_999, host: os.hostname(), since: new Date().toISOString() }));
    const r = await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    expect(r.source).toBe('download');
    expect(existsSync(path.join(dir, '_lock'))).toBe(false);
  });

  it('put() verifies and stores a finished image file; a wrong digest is refused', async () => {
    const cache = new ImageCache(cacheDir);
    const origin = { kind: 'server' as const, base: server.url };
    await expect(cache.put(edge, { name: 'alpine/edge', origin, sha256: 'b'.repeat(64) }, { reporter: recorder() })).rejects.toThrow(
      `has SHA-256 ${sha(edge)}, but ${'b'.repeat(64)} was expected`,
    );
    const e = await cache.put(edge, { name: 'alpine/edge', origin, sha256: sha(edge), etag: '"x"' }, { reporter: recorder() });
    expect(e.meta).toMatchObject({ name: 'alpine/edge', sha256: sha(edge), size: statSync(edge).size, etag: '"x"' });
    const r = await cachedOrDownloaded({ name: 'alpine/edge', settings: settings(), reporter: recorder(), http: fast });
    expect(r).toMatchObject({ source: 'cache', path: e.path });
    expect(server.requests).toHaveLength(0);
    const child = makeQcow2(path.join(work, 'child2.qcow2'), { backing: stable });
    await expect(cache.put(child, { name: 'alpine/bad', origin }, { reporter: recorder() })).rejects.toThrow(/has a backing file/);
  });

  it('refuses image names that would leave the cache folder', async () => {
    await expect(cachedOrDownloaded({ name: '../../etc/passwd', settings: settings(), reporter: recorder() })).rejects.toThrow(
      /is not a valid image name/,
    );
    await expect(cachedOrDownloaded({ name: 'debian/../..', settings: settings(), reporter: recorder() })).rejects.toThrow(
      /is not a valid image name/,
    );
  });
});
