// BatchedFileWriter against the real file system: byte order across batches
// written at explicit offsets, backpressure, and errors that reach the caller.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchedFileWriter } from '../src/util/batched-file-writer.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-batched-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `body` cut into chunks of 1 byte to 70 KiB, as a channel or a tar entry hands them over. */
function chunked(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const n = Math.min(body.length - at, 1 + Math.floor(Math.random() * 70_000));
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('BatchedFileWriter', () => {
  it('writes many small chunks byte for byte, over several batches in flight at once, truncating an old file', async () => {
    const body = randomBytes(7 * (1 << 20) + 12345);
    const file = path.join(tmp, 'out.bin');
    writeFileSync(file, Buffer.alloc(9 << 20, 7));
    await pipeline(Readable.from(chunked(body)), new BatchedFileWriter(file));
    expect(statSync(file).size).toBe(body.length);
    expect(readFileSync(file).equals(body)).toBe(true);
  });

  it('holds the producer back while its batches are being written', async () => {
    const w = new BatchedFileWriter(path.join(tmp, 'pushback.bin'));
    let accepted = 0;
    // Synchronous writes never give the disk a chance: write() must start saying "wait".
    while (w.write(Buffer.alloc(32 * 1024))) accepted++;
    expect(accepted).toBeLessThan((4 << 20) / (32 * 1024));
    await new Promise<void>((resolve) => w.end(resolve));
    expect(statSync(path.join(tmp, 'pushback.bin')).size).toBe((accepted + 1) * 32 * 1024);
  });

  it('writes into a file the caller holds open from the offset given, and leaves it open', async () => {
    const file = path.join(tmp, 'resumed.bin');
    const first = randomBytes(3 << 20);
    const rest = randomBytes(5 * (1 << 20) + 777);
    // What a dropped attempt left, followed by bytes a resume must overwrite.
    writeFileSync(file, Buffer.concat([first, Buffer.alloc(1 << 20, 9)]));
    const fd = openSync(file, 'r+');
    try {
      await pipeline(Readable.from(chunked(rest)), new BatchedFileWriter({ fd, start: first.length, name: 'resumed' }));
      expect(fstatSync(fd).size).toBe(first.length + rest.length);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file).equals(Buffer.concat([first, rest]))).toBe(true);
  });

  it('writes an empty file for no data', async () => {
    const file = path.join(tmp, 'empty.bin');
    await pipeline(Readable.from([]), new BatchedFileWriter(file));
    expect(statSync(file).size).toBe(0);
  });

  it('fails with the file system error when the file cannot be made, or a write fails (a full disk)', async () => {
    await expect(pipeline(Readable.from([Buffer.from('x')]), new BatchedFileWriter(path.join(tmp, 'no/such/dir/f')))).rejects.toThrow(
      /ENOENT/,
    );
    await expect(pipeline(Readable.from(chunked(randomBytes(3 << 20))), new BatchedFileWriter('/dev/full'))).rejects.toThrow(/ENOSPC/);
  });
});
