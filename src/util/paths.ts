// Path safety: nothing a manifest says may write outside the artifacts
// folder or read outside the objects folder.
import { realpathSync } from 'node:fs';
import path from 'node:path';

/** `root/rel` when `rel` is relative and stays inside `root`, else an error message. */
export function artifactDestination(root: string, rel: string): { path: string } | { error: string } {
  if (path.isAbsolute(rel) || /^[A-Za-z]:[\\/]/.test(rel)) {
    return { error: `destination "${rel}" is an absolute path; artifact destinations are relative to the artifacts folder` };
  }
  if (rel.split(/[\\/]/).includes('..')) {
    return { error: `destination "${rel}" contains ".."; artifact destinations must stay inside the artifacts folder` };
  }
  const full = path.resolve(root, rel);
  if (!isInside(path.resolve(root), full) || full === path.resolve(root)) {
    return { error: `destination "${rel}" is not a file inside the artifacts folder` };
  }
  return { path: full };
}

/** The host file for an object's `src`, re-rooted under `root` as Djinn does, refusing escapes (also through symlinks). */
export function objectSource(root: string, src: string): { path: string } | { error: string } {
  if (src.split(/[\\/]/).includes('..'))
    return { error: `object "${src}" contains ".."; objects must come from inside the objects folder` };
  const base = path.resolve(root);
  const full = path.join(base, src);
  let real: string;
  let realBase: string;
  try {
    realBase = realpathSync(base);
    real = realpathSync(full);
  } catch {
    return { error: `object "${src}" not found: no file at ${full}` };
  }
  if (!isInside(realBase, real)) return { error: `object "${src}" resolves to ${real}, outside the objects folder ${realBase}` };
  return { path: real };
}

export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  // "..c" is a name inside; only ".." itself or "../..." leaves.
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
