// Djinn's disks layout: <disks>/qemu/x86_64/<image name split on "/">.
import { readdir } from 'node:fs/promises';
import path from 'node:path';

export const ARCH = 'x86_64';

/** Where Djinn (and we) look for an image in a disks folder. */
export function diskPath(disks: string, name: string): string {
  return path.join(disks, 'qemu', ARCH, ...name.split('/'));
}

/** Image names present under <disks>/qemu/x86_64, e.g. ["debian/bookworm", "debian/stable"]. */
export async function listDiskImages(disks: string): Promise<string[]> {
  const root = path.join(disks, 'qemu', ARCH);
  const found: string[] = [];
  const walk = async (dir: string, prefix: string[], depth: number) => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      // Partial downloads/builds are not images.
      if (e.name.startsWith('.') || e.name.includes('.partial')) continue;
      if (e.isDirectory() && depth < 4) await walk(path.join(dir, e.name), [...prefix, e.name], depth + 1);
      else if (e.isFile() || e.isSymbolicLink()) found.push([...prefix, e.name].join('/'));
    }
  };
  await walk(root, [], 0);
  return found.sort();
}
