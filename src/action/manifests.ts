// The `manifest` input: one or more lines, each a file, a folder (its *.yml and
// *.yaml files, as Djinn's server reads .djinn/*.yml) or a glob, relative to
// the workspace. Several manifests run one after another, each in its own machine.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../manifest/errors.js';
import { globFiles, hasMeta, type EntryType } from '../util/glob.js';

async function typeOf(p: string): Promise<EntryType | null> {
  try {
    const s = await stat(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return null;
  }
}

/** Workspace-relative manifest paths, in a stable order, without duplicates. */
export async function findManifests(spec: string, workspace: string): Promise<string[]> {
  const found: string[] = [];
  const lines = spec.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const line of lines) {
    const abs = path.resolve(workspace, line);
    const rel = path.relative(workspace, abs) || '.';
    if (hasMeta(line)) {
      const matches = await globFiles(rel, {
        readdir: async (dir) => {
          try {
            const names = await readdir(path.resolve(workspace, dir));
            return Promise.all(names.map(async (name) => ({ name, type: (await typeOf(path.resolve(workspace, dir, name))) ?? 'other' })));
          } catch {
            return null;
          }
        },
        stat: (p) => typeOf(path.resolve(workspace, p)),
      });
      if (matches.length === 0) throw new UsageError(`no manifest matches "${line}".`, {}, 'input manifest');
      found.push(...matches);
      continue;
    }
    const type = await typeOf(abs);
    if (type === 'dir') {
      const names = (await readdir(abs)).filter((n) => /\.ya?ml$/.test(n)).sort();
      const files = [];
      for (const n of names) if ((await typeOf(path.join(abs, n))) === 'file') files.push(path.join(rel, n));
      if (files.length === 0) throw new UsageError(`the folder ${rel} holds no .yml manifest.`, {}, 'input manifest');
      found.push(...files);
    } else if (type === 'file') {
      found.push(rel);
    } else {
      throw new UsageError(`manifest ${rel} does not exist in the workspace (${workspace}); did the workflow run actions/checkout first?`, {}, 'input manifest');
    }
  }
  return [...new Set(found)];
}
