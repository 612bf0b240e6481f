// Preparation shared by the front ends (CLI and action): extra env lines,
// and finding manifests from a file, folder or glob (the action's `manifest`
// input, `djinn workflow`).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { EnvVar } from '../core/job.js';
import { UsageError } from '../core/errors.js';
import { globFiles, hasMeta } from '../util/glob.js';
import { hostEntryType, hostGlobFs } from '../util/fs-type.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `KEY=VALUE` lines (blank lines and `#` comments skipped, a CR before the LF
 * dropped) as env vars; `field` names the flag or input in errors, `file` the
 * env file when there is one. Errors never show a value: these lines usually
 * carry secrets.
 */
export function parseEnvLines(lines: string[], field: string, file?: string): EnvVar[] {
  const out: EnvVar[] = [];
  for (const [index, raw] of lines.entries()) {
    const l = (index === 0 ? raw.replace(/^\uFEFF/, '') : raw).replace(/\r$/, '');
    if (!l.trim() || l.trimStart().startsWith('#')) continue;
    const eq = l.indexOf('=');
    const key = eq > 0 ? l.slice(0, eq).trim() : '';
    const where = file ? { file, line: index + 1 } : {};
    const at = file ? '' : `line ${index + 1}: `;
    if (eq < 0) throw new UsageError(`${at}expected KEY=VALUE; the line has no "=".`, where, field);
    if (!ENV_NAME.test(key)) {
      throw new UsageError(
        `${at}expected KEY=VALUE with a variable name before "=" (letters, digits and _, not starting with a digit).`,
        where,
        field,
      );
    }
    out.push(checkEnvValue({ key, value: l.slice(eq + 1) }, field, where));
  }
  return out;
}

/** One `-env KEY=VALUE`: the value runs to the end, newlines included. */
export function parseEnvAssignment(text: string, field: string): EnvVar {
  const eq = text.indexOf('=');
  if (eq < 0) throw new UsageError('expected KEY=VALUE; the value has no "=".', {}, field);
  const key = text.slice(0, eq);
  if (!ENV_NAME.test(key)) {
    throw new UsageError(
      `"${key.slice(0, 40)}" is not a valid variable name (letters, digits and _, not starting with a digit).`,
      {},
      field,
    );
  }
  return checkEnvValue({ key, value: text.slice(eq + 1) }, field, {});
}

function checkEnvValue(e: EnvVar, field: string, where: { file?: string; line?: number }): EnvVar {
  if (e.value.includes('\0'))
    throw new UsageError(`the value of ${e.key} contains a NUL byte, which no environment can carry.`, where, field);
  return e;
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
