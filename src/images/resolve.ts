// Finds the image file a qemu build boots. Sources, in order: an explicit
// file, the disks folder (Djinn's layout), our cache, a download, our builder.
// (Contract shared by the qemu driver and the image sources; see issue 5.)
import type { DriverSettings } from '../drivers/settings.js';
import type { Reporter } from '../runner/reporter.js';

export interface ResolvedImage {
  /** Absolute path of the file to boot (never written: QEMU runs it with snapshot=on). */
  path: string;
  format: 'qcow2' | 'raw';
  /** Image name as the manifest (or -image) gave it, e.g. debian/stable. */
  name: string;
  /** Where it came from: file, disks, cache, download, build. */
  source: 'file' | 'disks' | 'cache' | 'download' | 'build';
  /** SHA-256 of the file when known (cache, download, pinned). */
  sha256?: string;
}

export interface ResolveRequest {
  name: string;
  settings: DriverSettings;
  reporter: Reporter;
  signal?: AbortSignal;
}

export async function resolveImage(req: ResolveRequest): Promise<ResolvedImage> {
  void req;
  throw new Error('resolveImage: not implemented yet');
}
