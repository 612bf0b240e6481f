// The docker driver's own reader of an archive's first entry, against archives
// made by real tar writers (GNU tar in its gnu and pax formats, and
// tar-stream), fed whole, a byte at a time and in uneven pieces.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { FirstTarEntry } from '../src/drivers/docker/first-tar-entry.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-tar-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** GNU tar's archive of `name` in `dir`, in the given format. */
function gnuTar(dir: string, name: string, format: 'gnu' | 'pax' | 'ustar'): Buffer {
  return execFileSync('tar', ['-c', `--format=${format}`, '-C', dir, '--', name], { maxBuffer: 64 << 20 });
}

function packed(add: (pack: tar.Pack) => void): Promise<Buffer> {
  const pack = tar.pack();
  add(pack);
  pack.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}

/** Feeds `archive` in pieces of the given sizes (cycled), reusing one buffer as a socket read would; returns the entry and the file's bytes. */
function read(archive: Buffer, sizes: number[] = [archive.length]) {
  const out: Buffer[] = [];
  const entry = new FirstTarEntry((slice) => out.push(Buffer.from(slice)));
  const scratch = Buffer.alloc(Math.max(...sizes));
  let at = 0;
  for (let i = 0; at < archive.length && !entry.done; i++) {
    const n = Math.min(sizes[i % sizes.length], archive.length - at);
    archive.copy(scratch, 0, at, at + n);
    entry.feed(scratch.subarray(0, n));
    scratch.fill(0xee); // the reader must not keep what it was given
    at += n;
  }
  entry.end();
  return { first: entry.first, data: Buffer.concat(out) };
}

describe('FirstTarEntry', () => {
  const data = randomBytes(70_000);
  const dir = path.join(tmp, 'files');
  mkdirSync(dir);
  const longName = `${'n'.repeat(120)}-ünï.bin`;
  const longTarget = `${'t'.repeat(150)}/target`;
  writeFileSync(path.join(dir, longName), data);
  writeFileSync(path.join(dir, 'short.bin'), data);
  writeFileSync(path.join(dir, 'empty'), '');
  symlinkSync(longTarget, path.join(dir, 'long-link'));
  symlinkSync('short', path.join(dir, 'short-link'));
  mkdirSync(path.join(dir, 'sub'));
  writeFileSync(path.join(dir, 'sub', 'inner'), 'inner');

  for (const format of ['gnu', 'pax'] as const) {
    it(`reads GNU tar's ${format} archives: a long-named file, whatever the piece sizes`, () => {
      const archive = gnuTar(dir, longName, format);
      for (const sizes of [[archive.length], [1], [511, 1, 513, 4096], [7]]) {
        const got = read(archive, sizes);
        expect(got.first).toEqual({ type: 'file' });
        expect(got.data.equals(data)).toBe(true);
      }
    });

    it(`reads GNU tar's ${format} archives: long and short symlinks, empty files and folders`, () => {
      expect(read(gnuTar(dir, 'long-link', format), [100]).first).toEqual({ type: 'symlink', target: longTarget });
      expect(read(gnuTar(dir, 'short-link', format)).first).toEqual({ type: 'symlink', target: 'short' });
      const empty = read(gnuTar(dir, 'empty', format));
      expect(empty.first).toEqual({ type: 'file' });
      expect(empty.data.length).toBe(0);
      expect(read(gnuTar(dir, 'sub', format)).first).toEqual({ type: 'other', what: 'directory' });
    });
  }

  it("reads tar-stream's archives, and stops after the first entry", async () => {
    const archive = await packed((p) => {
      p.entry({ name: 'a.txt', size: 5 }, 'first');
      p.entry({ name: 'b.txt', size: 6 }, 'second');
    });
    const got = read(archive, [3]);
    expect(got.first).toEqual({ type: 'file' });
    expect(got.data.toString()).toBe('first');
  });

  it('reads a size written in base-256, as GNU tar writes sizes past 8 GiB', () => {
    const archive = gnuTar(dir, 'short.bin', 'ustar');
    // Rewrite the size field of the file's header as base-256 and fix the checksum.
    const h = archive.subarray(0, 512);
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h.writeUIntBE(data.length, 130, 6);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    const got = read(archive);
    expect(got.data.equals(data)).toBe(true);
  });

  it('refuses empty, truncated and damaged archives', () => {
    expect(() => read(Buffer.alloc(1024))).toThrow('the engine sent an empty archive');
    expect(() => read(Buffer.alloc(0))).toThrow('the engine sent an empty archive');
    const archive = gnuTar(dir, longName, 'pax');
    expect(() => read(archive.subarray(0, 3000))).toThrow('ended in the middle of an entry');
    expect(() => read(archive.subarray(0, 100))).toThrow('ended in the middle of an entry');
    const damaged = Buffer.from(archive);
    damaged[0] ^= 0xff;
    expect(() => read(damaged)).toThrow('damaged header');
  });
});
