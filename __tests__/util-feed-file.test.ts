// feedFile against the real file system and real Writables: exact bytes with
// buffers reused only after the writer called back, the end of the stream,
// quiet stops when the reader goes away, and read errors that reach the caller.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { feedFile } from '../src/util/feed-file.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-feed-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A Writable that calls back late and checks, when it does, that its chunk still holds the bytes it was given. */
function slowChecker(expected: Buffer) {
  let at = 0;
  const got: Buffer[] = [];
  const changedBeforeCallback: number[] = [];
  let ended = false;
  const dest = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      const start = at;
      at += chunk.length;
      got.push(Buffer.from(chunk));
      setTimeout(() => {
        if (!chunk.equals(expected.subarray(start, start + chunk.length))) changedBeforeCallback.push(start);
        cb();
      }, 2);
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  return { dest, got: () => Buffer.concat(got), changedBeforeCallback, ended: () => ended };
}

describe('feedFile', () => {
  it('writes a file of several buffers byte for byte and never reuses a buffer the writer still holds', async () => {
    const body = randomBytes(5 * (1 << 20) + 4321);
    const file = path.join(tmp, 'body.bin');
    writeFileSync(file, body);
    const c = slowChecker(body);
    await feedFile(file, c.dest);
    await finished(c.dest);
    expect(c.ended()).toBe(true);
    expect(c.got().equals(body)).toBe(true);
    expect(c.changedBeforeCallback).toEqual([]);
  });

  it('ends the stream at once for an empty file', async () => {
    const file = path.join(tmp, 'empty.bin');
    writeFileSync(file, '');
    const c = slowChecker(Buffer.alloc(0));
    await feedFile(file, c.dest);
    await finished(c.dest);
    expect(c.got().length).toBe(0);
  });

  it('stops quietly when the writer fails or goes away, without ending it', async () => {
    const body = randomBytes(6 << 20);
    const file = path.join(tmp, 'stop.bin');
    writeFileSync(file, body);
    let accepted = 0;
    const failing = new Writable({
      write(chunk: Buffer, _enc, cb) {
        accepted += chunk.length;
        cb(accepted > 2 << 20 ? new Error('reader gone') : null);
      },
    });
    failing.on('error', () => {});
    await expect(feedFile(file, failing)).resolves.toBeUndefined();
    expect(accepted).toBeLessThan(body.length);
    expect(failing.writableEnded).toBe(false);

    // A writer that never calls back: only the abort ends the feed.
    const stuck = new Writable({ write() {} });
    const stop = new AbortController();
    const fed = feedFile(file, stuck, stop.signal);
    setTimeout(() => stop.abort(), 20);
    await expect(fed).resolves.toBeUndefined();
    expect(stuck.writableEnded).toBe(false);
  });

  it('rejects when the file cannot be read', async () => {
    const c = slowChecker(Buffer.alloc(0));
    await expect(feedFile(path.join(tmp, 'missing.bin'), c.dest)).rejects.toThrow(/ENOENT/);
    await expect(feedFile(tmp, c.dest)).rejects.toThrow(/EISDIR/);
  });
});
