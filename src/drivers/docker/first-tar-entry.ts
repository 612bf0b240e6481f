// The first entry of a tar stream, read as the bytes arrive and without
// holding on to them: the engine's archive of one path starts with that
// path's entry, and a regular file's bytes go straight to `onData` as slices
// of the caller's buffer, so the caller may reuse its read buffer as soon as
// feed() returns and its consumer has taken the slice. tar-stream (used for
// the fallback) queues the buffers it is given, which rules out a reused
// read buffer; that reuse is what lets a download touch no new memory.
//
// It knows ustar headers, PAX extended headers ('x', 'g') and GNU long names
// ('L', 'K'), which are what Go's archive/tar (the engine's) writes.
import type { FirstEntry } from './tar.js';

const BLOCK = 512;
/** More extended header than any real path needs; beyond it the archive is refused. */
const MAX_META = 1 << 20;

const TYPE_NAMES: Record<string, string> = {
  '1': 'link',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

export class FirstTarEntry {
  /** Set once the first entry's header is read; for a file, `done` tells when its bytes are all out. */
  first?: FirstEntry;
  /** A file's bytes still to come. */
  private remaining = 0;
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** An extended header's content being collected, its size, and the padding after it. */
  private meta?: { type: string; data: Buffer; fill: number; skip: number };
  private paxLinkpath?: string;
  private paxSize?: number;
  private gnuLinkname?: string;
  private finished = false;

  constructor(private readonly onData: (slice: Buffer) => void) {}

  /** Whether the first entry is read (and, for a file, all its bytes handed on): the rest of the stream is not needed. */
  get done(): boolean {
    return this.finished;
  }

  /** Takes the next bytes of the stream; throws on a malformed archive. */
  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.finished) {
      if (this.first) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.onData(chunk.subarray(at, at + n));
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.finished = true;
      } else if (this.meta) {
        at = this.feedMeta(chunk, at);
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + n);
        this.headerFill += n;
        at += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.readHeader();
        }
      }
    }
  }

  /** Throws unless the first entry is complete: called when the stream has ended. */
  end(): void {
    if (this.finished) return;
    if (!this.first && !this.meta && this.headerFill === 0) throw new Error('the engine sent an empty archive');
    throw new Error("the engine's archive ended in the middle of an entry");
  }

  private feedMeta(chunk: Buffer, at: number): number {
    const meta = this.meta!;
    if (meta.fill < meta.data.length) {
      const n = Math.min(meta.data.length - meta.fill, chunk.length - at);
      chunk.copy(meta.data, meta.fill, at, at + n);
      meta.fill += n;
      at += n;
    }
    const skip = Math.min(meta.skip, chunk.length - at);
    meta.skip -= skip;
    at += skip;
    if (meta.fill === meta.data.length && meta.skip === 0) {
      this.meta = undefined;
      this.applyMeta(meta.type, meta.data);
    }
    return at;
  }

  private readHeader(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) throw new Error('the engine sent an empty archive');
    if (!checksumMatches(h)) throw new Error("the engine's archive has a damaged header (its checksum does not match)");
    const type = String.fromCharCode(h[156] || 0x30);
    const size = sizeOf(h);
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > MAX_META) throw new Error(`the engine's archive has an extended header of ${size} bytes`);
      this.meta = { type, data: Buffer.alloc(size), fill: 0, skip: padding(size) };
      if (size === 0) this.feedMeta(Buffer.alloc(0), 0);
      return;
    }
    if (type === '0' || type === '7') {
      this.first = { type: 'file' };
      this.remaining = this.paxSize ?? size;
      if (this.remaining === 0) this.finished = true;
      return;
    }
    if (type === '2') {
      const target = this.paxLinkpath ?? this.gnuLinkname ?? cString(h, 157, 100);
      this.first = target ? { type: 'symlink', target } : { type: 'other', what: 'symlink' };
    } else {
      this.first = { type: 'other', what: TYPE_NAMES[type] ?? `tar type ${JSON.stringify(type)}` };
    }
    this.finished = true;
  }

  private applyMeta(type: string, data: Buffer): void {
    if (type === 'L') return; // a long name: the entry's name does not matter here
    if (type === 'K') {
      this.gnuLinkname = cString(data, 0, data.length);
      return;
    }
    // PAX records: "<length> <key>=<value>\n". Global ones ('g') carry nothing we use.
    if (type === 'g') return;
    let at = 0;
    while (at < data.length) {
      const space = data.indexOf(0x20, at);
      const length = Number(data.toString('ascii', at, space));
      if (space < 0 || !Number.isInteger(length) || length <= space - at || at + length > data.length)
        throw new Error("the engine's archive has a malformed PAX header");
      const record = data.toString('utf8', space + 1, at + length - 1);
      const eq = record.indexOf('=');
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (key === 'linkpath') this.paxLinkpath = value;
      else if (key === 'size') {
        const n = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new Error(`the engine's archive has a PAX size of "${value}"`);
        this.paxSize = n;
      }
      at += length;
    }
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

/** A numeric header field's digits, without the NULs and spaces that pad it. */
function numericField(h: Buffer, start: number, end: number): string {
  return h
    .toString('ascii', start, end)
    .replace(/[\0 ]+$/, '')
    .trim();
}

/** The size field: octal digits, or GNU's base-256 (high bit set) for sizes past 8 GiB. */
function sizeOf(h: Buffer): number {
  if (h[124] & 0x80) {
    let n = h[124] & 0x7f;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i];
    if (!Number.isSafeInteger(n)) throw new Error("the engine's archive has an entry too large to read");
    return n;
  }
  const text = numericField(h, 124, 136);
  if (!/^[0-7]*$/.test(text)) throw new Error(`the engine's archive has a size field of "${text}"`);
  return text ? parseInt(text, 8) : 0;
}

/** The header's checksum: its bytes summed with the checksum field read as spaces (unsigned, or signed as old tars wrote it). */
function checksumMatches(h: Buffer): boolean {
  const text = numericField(h, 148, 156);
  if (!/^[0-7]+$/.test(text)) return false;
  const want = parseInt(text, 8);
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += h[i];
    signed += h[i] > 127 ? h[i] - 256 : h[i];
  }
  return want === unsigned || want === signed;
}
