// The docker driver's direct archive download against a scripted peer on a
// unix socket, for the answers a real engine will not give on demand (a
// chunked body, a cut connection, a header in pieces). The same code against
// a real engine is in docker-downloads.test.ts.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadArchiveEntry } from '../src/drivers/docker/archive-download.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'djinn-archive-peer-'));
const socketPath = path.join(dir, 'engine.sock');
let answer: (sock: net.Socket, request: string) => void = () => {};
const requests: string[] = [];
const server = net.createServer((sock) => {
  let request = '';
  sock.on('data', (c: Buffer) => {
    request += c.toString('latin1');
    if (!request.includes('\r\n\r\n')) return;
    requests.push(request);
    answer(sock, request);
  });
  sock.on('error', () => {});
});

beforeAll(() => new Promise<void>((resolve) => server.listen(socketPath, resolve)));
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function archiveOf(name: string, data: Buffer): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name, size: data.length }, data);
  pack.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** Writes `bytes` in pieces of `size`, each in its own turn of the event loop, then closes. */
function trickle(sock: net.Socket, bytes: Buffer, size: number): void {
  let at = 0;
  const next = (): void => {
    if (at >= bytes.length) return void sock.end();
    sock.write(bytes.subarray(at, at + size), () => setImmediate(next));
    at += size;
  };
  next();
}

const out = path.join(dir, 'out.bin');
const fetch = (guestPath = '/w/f') => downloadArchiveEntry({ path: socketPath }, '1.43', 'files-ctr', guestPath, out);

describe('downloadArchiveEntry', () => {
  it('asks for the path over HTTP/1.0 and reads a header and body that arrive in small pieces', async () => {
    const data = randomBytes(300_000);
    const body = await archiveOf('f', data);
    answer = (sock) =>
      trickle(sock, Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\n\r\n'), body]), 7000);
    expect(await fetch('/w/a b&c')).toEqual({ type: 'file' });
    expect(readFileSync(out).equals(data)).toBe(true);
    expect(requests.at(-1)).toMatch(/^GET \/v1\.43\/containers\/files-ctr\/archive\?path=%2Fw%2Fa%20b%26c HTTP\/1\.0\r\n/);
  });

  it('leaves errors and chunked bodies to dockerode (undefined), writing no file', async () => {
    rmSync(out, { force: true });
    answer = (sock) => sock.end('HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"message":"Could not find the file"}');
    expect(await fetch()).toBeUndefined();
    answer = (sock) => sock.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(await fetch()).toBeUndefined();
    expect(existsSync(out)).toBe(false);
  });

  it('fails clearly when the engine closes early or sends no archive', async () => {
    answer = (sock) => sock.end();
    await expect(fetch()).rejects.toThrow('the engine closed the connection before answering');
    const body = await archiveOf('f', randomBytes(100_000));
    answer = (sock) => sock.end(Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\n\r\n'), body.subarray(0, 50_000)]));
    await expect(fetch()).rejects.toThrow("the engine's archive ended in the middle of an entry");
    answer = (sock) => sock.end('HTTP/1.0 200 OK\r\n\r\n');
    await expect(fetch()).rejects.toThrow('the engine sent an empty archive');
    answer = (sock) => sock.end(`HTTP/1.0 200 OK\r\nX-Big: ${'x'.repeat(70_000)}`);
    await expect(fetch()).rejects.toThrow('larger than 64 KiB');
  });
});
