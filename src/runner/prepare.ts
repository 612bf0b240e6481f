// Preparation shared by the front ends (CLI and action): extra env lines,
// and finding manifests from a file, folder or glob (the action's `manifest`
// input, `djinn workflow`).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { EnvVar } from '../drivers/driver.js';
import { UsageError } from '../manifest/errors.js';
import { globFiles, hasMeta } from '../util/glob.js';
import { hostEntryType, hostGlobFs } from '../util/fs-type.js';

/** `KEY=VALUE` lines (blank lines and `#` comments skipped) as env vars; `field` names the flag or input in errors. */
export function parseEnvLines(lines: string[], field: string): EnvVar[] {
  const out: EnvVar[] = [];
  for (const raw of lines) {
    const l = raw.replace(/\r$/, '');
    if (!l.trim() || l.trimStart().startsWith('#')) continue;
    const eq = l.indexOf('=');
    const key = eq > 0 ? l.slice(0, eq).trim() : '';
    // Never echo the value: these lines usually carry secrets.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new UsageError(
        `expected KEY=VALUE lines with a valid variable name, found a line starting "${l.slice(0, Math.max(0, eq)).slice(0, 20) || '(no "=")'}".`,
        {},
        field,
      );
    out.push({ key, value: l.slice(eq + 1) });
  }
  return out;
}

/**
 * Workspace-relative manifest paths for `spec`: one or more lines, each a file,
 * a folder (its *.yml and *.yaml files, as Djinn's server reads .djinn/*.yml)
 * or a glob; in a stable order, without duplicates.
 */
export async function findManifests(spec: string, workspace: string, field = 'input manifest'): Promise<string[]> {
  const found: string[] = [];
  const lines = spec
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  for (const line of lines) {
    const abs = path.resolve(workspace, line);
    const rel = path.relative(workspace, abs) || '.';
    if (hasMeta(line)) {
      const matches = await globFiles(
        rel,
        hostGlobFs((p) => path.resolve(workspace, p)),
      );
      if (matches.length === 0) throw new UsageError(`no manifest matches "${line}".`, {}, field);
      found.push(...matches);
      continue;
    }
    const type = await hostEntryType(abs);
    if (type === 'dir') {
      const names = (await readdir(abs)).filter((n) => /\.ya?ml$/.test(n)).sort();
      const files = [];
      for (const n of names) if ((await hostEntryType(path.join(abs, n))) === 'file') files.push(path.join(rel, n));
      if (files.length === 0) throw new UsageError(`the folder ${rel} holds no .yml manifest.`, {}, field);
      found.push(...files);
    } else if (type === 'file') {
      found.push(rel);
    } else {
      throw new UsageError(
        `manifest ${rel} does not exist in ${workspace}${field.startsWith('input') ? '; did the workflow run actions/checkout first?' : '.'}`,
        {},
        field,
      );
    }
  }
  return [...new Set(found)];
}
