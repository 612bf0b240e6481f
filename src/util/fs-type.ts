import { stat } from 'node:fs/promises';
import type { EntryType } from './glob.js';

/** What a host path is (following symlinks), for globbing on this host; null when it does not exist. */
export async function hostEntryType(p: string): Promise<EntryType | null> {
  try {
    const s = await stat(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return null;
  }
}
