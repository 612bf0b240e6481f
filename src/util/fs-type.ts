import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { EntryType, GlobFs } from './glob.js';

/** What a host path is (following symlinks), for globbing on this host; null when it does not exist. */
export async function hostEntryType(p: string): Promise<EntryType | null> {
  try {
    const s = await stat(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return null;
  }
}

/** The host's file system as glob.ts sees it, with pattern paths mapped to host paths by `resolve`. */
export function hostGlobFs(resolve: (p: string) => string): GlobFs {
  return {
    readdir: async (dir) => {
      try {
        const names = await readdir(resolve(dir));
        return Promise.all(names.map(async (name) => ({ name, type: (await hostEntryType(resolve(path.join(dir, name)))) ?? 'other' })));
      } catch {
        return null;
      }
    },
    stat: (p) => hostEntryType(resolve(p)),
  };
}
