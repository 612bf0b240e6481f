// `npm run bench -- images [--rounds N] [--mib N]`: getting an image from the
// loopback image server. Cold download through our fetcher against curl
// fetching the same file in the same run (the baseline), then a cache hit
// and a revalidated hit (304). The server runs in its own process (so the
// fetcher does not share its event loop); data lives on /dev/shm so the disk
// is not what is measured. Prints medians and ratios.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { DriverSettings } from '../src/config/settings.js';
import { testSettings } from '../__tests__/helpers/settings.js';
import { cachedOrDownloaded } from '../src/images/fetch/index.js';
import { silentReporter } from '../src/core/reporter.js';
import { sha256File } from '../src/util/sha256.js';
import { verifyImage } from '../src/images/verify.js';
import { makeQcow2 } from '../__tests__/helpers/image-server.js';
import { fileURLToPath } from 'node:url';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Async: the server runs in this process, so a blocking child would never be answered. */
function curl(url: string, out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sSf', '-o', out, url], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited ${code}`))));
  });
}

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

export async function run(args: string[]): Promise<void> {
  const rounds = arg(args, 'rounds', 5);
  const mib = arg(args, 'mib', 128);
  const base = mkdtempSync(path.join('/dev/shm', 'djinn-bench-images-'));
  const image = makeQcow2(path.join(base, 'image.qcow2'), { dataKiB: mib * 1024 });
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), '_image-server-proc.ts'), 'debian/stable', image],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    const server = {
      url: await new Promise<string>((resolve, reject) => {
        proc.stdout!.once('data', (c: Buffer) => resolve(c.toString().trim()));
        proc.once('exit', (code) => reject(new Error(`image server exited ${code}`)));
      }),
    };
    const url = `${server.url}/qemu/x86_64/debian/stable`;
    const samples: Record<string, number[]> = { curl: [], download: [], verify: [], hit: [], revalidated: [] };
    for (let r = 0; r < rounds; r++) {
      const dir = mkdtempSync(path.join(base, 'round-'));
      const s: DriverSettings = testSettings(dir, { cacheDir: path.join(dir, 'cache'), image: { server: server.url } });
      let t = performance.now();
      await curl(url, path.join(dir, 'curl.qcow2'));
      samples.curl.push(performance.now() - t);

      t = performance.now();
      const first = await cachedOrDownloaded({ name: 'debian/stable', settings: s, reporter: silentReporter });
      samples.download.push(performance.now() - t);
      if (first.source !== 'download') throw new Error('expected a download');

      // What the download spends beyond moving bytes: hashing and qemu-img's check.
      t = performance.now();
      await sha256File(first.path);
      await verifyImage(first.path, 'qcow2');
      samples.verify.push(performance.now() - t);

      t = performance.now();
      const hit = await cachedOrDownloaded({ name: 'debian/stable', settings: s, reporter: silentReporter });
      samples.hit.push(performance.now() - t);
      if (hit.source !== 'cache') throw new Error('expected a cache hit');

      await new Promise((res) => setTimeout(res, 2));
      t = performance.now();
      const again = await cachedOrDownloaded({
        name: 'debian/stable',
        settings: { ...s, image: { ...s.image, maxAgeMs: 1 } },
        reporter: silentReporter,
      });
      samples.revalidated.push(performance.now() - t);
      if (again.source !== 'cache') throw new Error('expected a revalidated cache hit');
      rmSync(dir, { recursive: true, force: true });
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    const rows = [
      ['curl (baseline)', m.curl, 1],
      ['download (cold cache, verified)', m.download, m.download / m.curl],
      ['  verification alone (re-hash + qemu-img)', m.verify, m.verify / m.curl],
      ['cache hit', m.hit, m.hit / m.curl],
      ['cache hit after max-age (304)', m.revalidated, m.revalidated / m.curl],
    ] as const;
    process.stdout.write(`images: ${mib} MiB of data in a qcow2, ${rounds} rounds, medians\n`);
    for (const [name, ms, ratio] of rows)
      process.stdout.write(`  ${name.padEnd(44)} ${ms.toFixed(1).padStart(9)} ms   x${ratio.toFixed(3)} of curl\n`);
    process.stdout.write(
      `  download / cache hit: ${(m.download / m.hit).toFixed(0)}x; throughput ` +
        `${((mib * 1.048576) / (m.download / 1000)).toFixed(0)} MB/s (curl ` +
        `${((mib * 1.048576) / (m.curl / 1000)).toFixed(0)} MB/s)\n`,
    );
  } finally {
    proc.stdin!.end();
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
    rmSync(base, { recursive: true, force: true });
  }
}
