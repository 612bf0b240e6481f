// A loopback HTTP server laid out like a distribution's cloud image folder
// (e.g. cloud.debian.org/images/cloud: <codename>/latest/<image> + SHA512SUMS),
// serving the files of one local folder as they are. Requests are logged.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface CloudMirror {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

export async function startCloudMirror(root: string): Promise<CloudMirror> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(rel);
    const file = path.join(root, rel);
    let size: number;
    try {
      if (!file.startsWith(root + path.sep)) throw new Error('outside');
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body>Not Found</body></html>');
      return;
    }
    res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
