// Downloads one file through the engine's archive API without Node's HTTP
// client. Node's client answers each socket read with a new 64 KiB buffer
// and each chunk of a chunked body with a copy of it; for a 64 MB artifact
// that fresh memory cost more CPU than the engine's own work, and the
// download took 1.2x `docker cp`'s time (docs/docker.md, "Speed").
// Here one HTTP/1.0 request (so the body is plain bytes up to the close)
// reads into one buffer that is reused for every read, and the file's bytes
// go from it to the file writer, which copies them. Anything but a plain
// 200 answer returns undefined, and the caller asks dockerode, which says
// what went wrong as it always has.
import net from 'node:net';
import { BatchedFileWriter } from '../../util/batched-file-writer.js';
import { FirstTarEntry } from './first-tar-entry.js';
import type { FirstEntry } from './tar.js';

/** Where a plain (unencrypted) engine listens. */
export type EngineAddress = { path: string } | { host: string; port: number };

const READ_BUFFER = 256 * 1024;
const MAX_HEAD = 64 * 1024;

/** The first entry of the archive of `guestPath` in `container`, its file written to `localPath`; undefined when the engine did not answer 200. */
export function downloadArchiveEntry(
  address: EngineAddress,
  apiVersion: string,
  container: string,
  guestPath: string,
  localPath: string,
): Promise<FirstEntry | undefined> {
  return new Promise((resolve, reject) => {
    let writer: BatchedFileWriter | undefined;
    let head: Buffer | null = Buffer.alloc(0);
    let settled = false;
    let pending = 0;
    let paused = false;

    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (writer) writer.destroy(err);
      reject(err);
    };
    const succeed = (value: FirstEntry | undefined): void => {
      if (settled) return;
      settled = true;
      resolve(value);
    };

    const entry = new FirstTarEntry((slice) => {
      writer ??= newWriter();
      pending++;
      writer.write(slice, () => {
        pending--;
        if (paused && pending === 0) {
          paused = false;
          socket.resume();
        }
      });
    });

    const newWriter = (): BatchedFileWriter => {
      const w = new BatchedFileWriter(localPath);
      w.on('error', fail);
      return w;
    };

    /** The first entry is read; a file's is settled once it is on disk. The rest of the archive is not wanted. */
    const complete = (): void => {
      const first = entry.first!;
      if (first.type !== 'file') {
        socket.destroy();
        return succeed(first);
      }
      writer ??= newWriter();
      writer.end((err?: Error | null) => {
        if (err) return;
        socket.destroy(); // only the end-of-archive blocks, or a folder's archive, could still come
        succeed(first);
      });
    };

    const onBody = (bytes: Buffer): void => {
      if (entry.done) return; // the end-of-archive blocks
      entry.feed(bytes);
      if (entry.done) complete();
    };

    const onHead = (bytes: Buffer): Buffer | undefined => {
      head = Buffer.concat([head!, bytes]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) throw new Error('the engine sent an HTTP header larger than 64 KiB');
        return undefined;
      }
      const lines = head.toString('latin1', 0, end).split('\r\n');
      const body = head.subarray(end + 4);
      head = null;
      const plain200 = /^HTTP\/1\.[01] 200 /.test(lines[0] + ' ') && !lines.some((l) => /^transfer-encoding\s*:/i.test(l));
      if (!plain200) {
        socket.destroy();
        succeed(undefined);
        return undefined;
      }
      return body; // a part of `head`, a copy: the read buffer may be reused
    };

    const socket = net.connect({
      ...('path' in address ? { path: address.path } : { host: address.host, port: address.port }),
      onread: {
        buffer: Buffer.allocUnsafeSlow(READ_BUFFER),
        callback: (n: number, buf: Buffer): boolean => {
          if (settled) return false;
          try {
            if (head) {
              const body = onHead(buf.subarray(0, n));
              if (body?.length) onBody(body);
            } else onBody(buf.subarray(0, n));
          } catch (err) {
            fail(err instanceof Error ? err : new Error(String(err)));
            return false;
          }
          // The writer holds a slice of the read buffer until it has copied it: no read may overwrite it before.
          if (writer && writer.writableLength > 0) {
            paused = true;
            return false;
          }
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.on('connect', () => {
      const url = `/v${apiVersion}/containers/${encodeURIComponent(container)}/archive?path=${encodeURIComponent(guestPath)}`;
      socket.write(`GET ${url} HTTP/1.0\r\nHost: docker\r\nUser-Agent: djinn-vm\r\n\r\n`);
    });
    socket.on('error', fail);
    // The engine closes the connection at the end of the body: anything short of the whole first entry is an error.
    const closed = (): void => {
      if (settled) return;
      if (head) return fail(new Error('the engine closed the connection before answering'));
      if (entry.done) return; // complete() settles once the file is written
      try {
        entry.end();
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    };
    socket.on('end', closed);
    socket.on('close', closed);
  });
}
