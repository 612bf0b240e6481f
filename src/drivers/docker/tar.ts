// The engine's archive API speaks tar: one file in, one file out.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { BatchedFileWriter } from '../../util/batched-file-writer.js';

/** A tar stream holding the host file `localPath` as `name`. */
export async function packFile(localPath: string, name: string, mode: number): Promise<Readable> {
  const { size } = await stat(localPath);
  const pack = tar.pack();
  const entry = pack.entry({ name, size, mode, type: 'file', mtime: new Date() }, (err) => {
    if (err) pack.destroy(err);
    else pack.finalize();
  });
  pipeline(createReadStream(localPath), entry).catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return pack as unknown as Readable; // a streamx stream; it pipes like a Node one
}

/** A tar stream holding `text` as the file `name`, with its parent folders. */
export function packText(name: string, text: string, mode: number): Readable {
  const pack = tar.pack();
  const parts = name.split('/').slice(0, -1);
  for (let i = 1; i <= parts.length; i++) pack.entry({ name: `${parts.slice(0, i).join('/')}/`, type: 'directory', mode: 0o755 });
  pack.entry({ name, mode, type: 'file' }, text);
  pack.finalize();
  return pack as unknown as Readable;
}

export type FirstEntry = { type: 'file' } | { type: 'symlink'; target: string } | { type: 'other'; what: string };

/** Reads the first entry of a tar stream; a regular file is written to `localPath`. The rest is drained. */
export async function extractFirst(tarStream: NodeJS.ReadableStream, localPath: string): Promise<FirstEntry> {
  const extract = tar.extract();
  const input = tarStream as unknown as Readable;
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract);
  let first: FirstEntry | undefined;
  for await (const entry of extract) {
    if (first) {
      entry.resume();
      continue;
    }
    const h = entry.header;
    if (h.type === 'file' || h.type === 'contiguous-file') {
      await pipeline(entry, new BatchedFileWriter(localPath));
      first = { type: 'file' };
    } else {
      entry.resume();
      first = h.type === 'symlink' && h.linkname ? { type: 'symlink', target: h.linkname } : { type: 'other', what: h.type ?? 'unknown' };
    }
  }
  if (!first) throw new Error('the engine sent an empty archive');
  return first;
}
