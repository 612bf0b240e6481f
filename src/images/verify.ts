// Checks an image before QEMU sees it. A qcow2 can name other files (a backing
// file, an external data file) that QEMU would open and show to the guest, so a
// crafted image could read host files: such images are refused.
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { DriverError } from '../core/errors.js';
import { ImageRejectedError } from './fetch/errors.js';
import { NotQcow2Error, readQcow2Header } from './fetch/qcow2.js';

export type ImageFormat = 'qcow2' | 'raw';

export interface VerifiedImage {
  format: ImageFormat;
  virtualSize: number;
}

export async function verifyImage(file: string, format: ImageFormat = 'qcow2'): Promise<VerifiedImage> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw new DriverError(`image ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
  }
  if (!st.isFile()) throw new DriverError(`image ${file} is not a file.`);
  if (format === 'qcow2') {
    // Read straight from the header too: qemu-img may not even open an image whose backing file is missing.
    const header = await readQcow2Header(file).catch((err: unknown) => {
      if (err instanceof NotQcow2Error) {
        throw new DriverError(
          `image ${file} is not a qcow2 file (no qcow2 magic "QFI\\xfb" at its start). Djinn images are qcow2; to boot a ` +
            `raw disk on purpose pass -image-format raw.`,
        );
      }
      if (err instanceof ImageRejectedError) throw new DriverError(`image ${err.message}`);
      throw err;
    });
    if (header.backingFile !== undefined) throw new DriverError(backingMessage(file));
    if (header.externalDataFile) {
      throw new DriverError(
        `image ${file} keeps its data in an external file; such images are refused (QEMU would open a host file named by the image).`,
      );
    }
  }
  const info = await qemuImgInfo(file, format);
  if (info.format !== format) throw new DriverError(`image ${file}: qemu-img reads it as ${info.format}, expected ${format}.`);
  if (info['backing-filename'] || info['full-backing-filename']) throw new DriverError(backingMessage(file));
  const data = (info['format-specific'] as { data?: Record<string, unknown> } | undefined)?.data;
  if (data && data['data-file']) throw new DriverError(`image ${file} keeps its data in an external file; such images are refused.`);
  return { format, virtualSize: Number(info['virtual-size'] ?? 0) };
}

function backingMessage(file: string): string {
  return (
    `image ${file} has a backing file; such images are refused (a crafted image could make QEMU read host files ` +
    `into the guest). Flatten it first: qemu-img convert -O qcow2 ${file} flat.qcow2`
  );
}

function qemuImgInfo(file: string, format: ImageFormat): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    // -U: other builds may be running this image (read-only, snapshot=on) right now.
    const child = spawn('qemu-img', ['info', '-U', '--output=json', '-f', format, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', (e) => reject(new DriverError(`cannot run qemu-img (install qemu-utils): ${e.message}`)));
    child.on('close', (code) => {
      if (code !== 0)
        return reject(new DriverError(`qemu-img cannot read image ${file} as ${format}: ${err.trim() || `exit status ${code}`}`));
      try {
        resolve(JSON.parse(out) as Record<string, unknown>);
      } catch {
        reject(new DriverError(`qemu-img info gave unreadable output for ${file}.`));
      }
    });
  });
}
