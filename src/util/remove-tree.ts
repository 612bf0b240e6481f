// rm -rf that also removes what a job made read-only (a read-only subfolder
// cannot be emptied until it is writable again). Never throws.
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

export async function removeTree(dir: string): Promise<void> {
  if (!dir) return;
  try {
    await rm(dir, { recursive: true, force: true });
    return;
  } catch {
    // fall through: make every folder writable, then try again
  }
  await makeWritable(dir);
  await rm(dir, { recursive: true, force: true }).catch(() => {});
}

async function makeWritable(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await chmod(dir, 0o700).catch(() => {});
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) await makeWritable(path.join(dir, n));
}
