// A ~1 MB busybox initrd that loads the virtio modules and mounts the root.
// (Debian's initramfs-tools initrd works too but costs ~2 s more under emulation.)
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { INITRD_INIT } from './guest-files.js';
import { BuildError, run } from './run.js';

/** Modules the initrd loads, with their dependencies first. */
const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net'];

/** The newest kernel version installed in the tree. */
export async function kernelVersion(root: string): Promise<string> {
  const versions = (await readdir(path.join(root, 'usr/lib/modules'))).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const v = versions.at(-1);
  if (!v) throw new BuildError('the image tree has no kernel modules: was the kernel package installed?');
  return v;
}

/** Dependency-ordered module paths (relative to the modules folder), read from modules.dep: no host kmod needed. */
export function moduleOrder(modulesDep: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const file = line.slice(0, colon);
    deps.set(
      file,
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
    byName.set(
      path
        .basename(file)
        .replace(/\.ko(\..*)?$/, '')
        .replace(/-/g, '_'),
      file,
    );
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const d of deps.get(file) ?? []) visit(d);
    order.push(file);
  };
  for (const w of wanted) {
    const file = byName.get(w);
    // Built into the kernel: nothing to load.
    if (file) visit(file);
  }
  return order;
}

export async function makeInitrd(root: string, kver: string, out: string): Promise<void> {
  const modDir = path.join(root, 'usr/lib/modules', kver);
  const work = await mkdtemp(path.join(path.dirname(out), 'initrd-'));
  try {
    for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'modules']) await mkdir(path.join(work, d));
    await copyFile(path.join(root, 'usr/bin/busybox'), path.join(work, 'bin/busybox'));
    const names: string[] = [];
    for (const rel of moduleOrder(await readFile(path.join(modDir, 'modules.dep'), 'utf8'), INITRD_MODULES)) {
      const src = path.join(modDir, rel);
      const name = path.basename(rel).replace(/\.(xz|zst|gz)$/, '');
      // busybox insmod takes plain .ko files only.
      if (rel.endsWith('.xz')) await writeFile(path.join(work, 'modules', name), await run('xz', ['-dc', src]));
      else if (rel.endsWith('.zst')) await writeFile(path.join(work, 'modules', name), await run('zstd', ['-qdc', src]));
      else if (rel.endsWith('.gz')) await writeFile(path.join(work, 'modules', name), await run('gzip', ['-dc', src]));
      else await copyFile(src, path.join(work, 'modules', name));
      names.push(name);
    }
    await writeFile(path.join(work, 'modules.order'), names.join('\n') + '\n');
    await writeFile(path.join(work, 'init'), INITRD_INIT, { mode: 0o755 });
    const cpio = await run('sh', ['-c', 'find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9'], { cwd: work });
    await writeFile(out, cpio);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
