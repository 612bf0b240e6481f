// Reads a qcow2 header and refuses files we must not boot: not qcow2, a
// backing file (QEMU would open another host file), or an external data file.
// Kept local to the download path so a half-written file is checked before
// it is ever renamed into place.
import { open } from 'node:fs/promises';
import { ImageRejectedError } from './errors.js';

export const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"

export interface Qcow2Header {
  version: number;
  virtualSize: number;
  backingFile?: string;
  externalDataFile: boolean;
}

/** True when the first bytes are the qcow2 magic (callers pass at least 4 bytes). */
export function hasQcow2Magic(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(QCOW2_MAGIC);
}

/** Shows the start of a refused file, printable characters only. */
export function describeStart(head: Buffer): string {
  const text = head
    .subarray(0, 16)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
  return JSON.stringify(text);
}

/** The file does not start with the qcow2 magic at all. */
export class NotQcow2Error extends ImageRejectedError {}

export async function readQcow2Header(file: string): Promise<Qcow2Header> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(104);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    if (!hasQcow2Magic(head)) throw new NotQcow2Error(`${file} is not a qcow2 image (it starts with ${describeStart(head)}).`);
    if (bytesRead < 72) throw new ImageRejectedError(`${file} is a truncated qcow2 image (${bytesRead} bytes of header).`);
    const version = head.readUInt32BE(4);
    const backingOffset = Number(head.readBigUInt64BE(8));
    const backingSize = head.readUInt32BE(16);
    const virtualSize = Number(head.readBigUInt64BE(24));
    let backingFile: string | undefined;
    if (backingOffset !== 0) {
      const name = Buffer.alloc(Math.min(backingSize, 1023));
      await fh.read(name, 0, name.length, backingOffset);
      backingFile = name.toString('utf8') || '(unnamed)';
    }
    // Version 3 incompatible-feature bit 2: the guest data lives in another host file.
    const externalDataFile = version >= 3 && bytesRead >= 80 && (head.readBigUInt64BE(72) & 4n) !== 0n;
    return { version, virtualSize, backingFile, externalDataFile };
  } finally {
    await fh.close();
  }
}

/** Throws ImageRejectedError unless the file is a self-contained qcow2 image. */
export async function checkQcow2(file: string, label = file): Promise<Qcow2Header> {
  const h = await readQcow2Header(file).catch((err: unknown) => {
    if (err instanceof ImageRejectedError) throw new ImageRejectedError(err.message.replace(file, label));
    throw err;
  });
  if (h.version !== 2 && h.version !== 3)
    throw new ImageRejectedError(`${label} is qcow2 version ${h.version}; only versions 2 and 3 are accepted.`);
  if (h.backingFile !== undefined)
    throw new ImageRejectedError(
      `${label} has a backing file (${h.backingFile}); refusing it, because booting it would read another file on this machine.`,
    );
  if (h.externalDataFile)
    throw new ImageRejectedError(
      `${label} keeps its data in an external file; refusing it, because booting it would read another file on this machine.`,
    );
  return h;
}
