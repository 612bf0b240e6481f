// The two socket settings that keep ssh2 fast and small (see
// src/transport/ssh/coalesce.ts and garbage.ts), on a real loopback socket.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../src/transport/ssh/coalesce.js';
import { minorGcAvailable } from '../src/transport/ssh/garbage.js';

const closers: (() => void)[] = [];
afterEach(() => closers.splice(0).forEach((f) => f()));

/** A connected client socket and the bytes its peer has received so far. */
async function pair(): Promise<{ client: net.Socket; received: () => Buffer; server: net.Server }> {
  const chunks: Buffer[] = [];
  const server = net.createServer((s) => s.on('data', (d: Buffer) => chunks.push(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  closers.push(() => {
    client.destroy();
    server.close();
  });
  return { client, server, received: () => Buffer.concat(chunks) };
}

describe('coalesceWrites', () => {
  it('hands the writes of one tick to the kernel together, in order, and flushes them', async () => {
    const { client, received } = await pair();
    coalesceWrites(client);
    const sizes: number[] = [];
    const writev = (client as unknown as { _writev: (chunks: { chunk: Buffer }[], cb: () => void) => void })._writev;
    (client as unknown as { _writev: typeof writev })._writev = function (chunks, cb) {
      sizes.push(chunks.length);
      return writev.call(this, chunks, cb);
    };
    const parts = Array.from({ length: 8 }, (_, i) => Buffer.alloc(1000, 65 + i));
    for (const p of parts) client.write(p);
    // Nothing is held back beyond this tick.
    await new Promise((r) => setTimeout(r, 200));
    expect(received().equals(Buffer.concat(parts))).toBe(true);
    expect(sizes).toEqual([8]);
    expect(client.writableCorked).toBe(0);
  });

  it('lets end() flush what is corked', async () => {
    const { client, received } = await pair();
    coalesceWrites(client);
    client.write('abc');
    client.end('def');
    await new Promise((r) => client.once('finish', r));
    await new Promise((r) => setTimeout(r, 100));
    expect(received().toString()).toBe('abcdef');
  });
});

describe('collectGarbageAsTrafficFlows', () => {
  it('can run minor collections on this Node (otherwise streaming grows memory by ~50 MB)', () => {
    expect(minorGcAvailable()).toBe(true);
  });
});
