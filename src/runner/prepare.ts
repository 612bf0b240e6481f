// Preparation shared by the front ends (CLI and action): extra env lines.
import type { EnvVar } from '../drivers/driver.js';
import { UsageError } from '../manifest/errors.js';

/** `KEY=VALUE` lines (blank lines and `#` comments skipped) as env vars; `field` names the flag or input in errors. */
export function parseEnvLines(lines: string[], field: string): EnvVar[] {
  const out: EnvVar[] = [];
  for (const raw of lines) {
    const l = raw.replace(/\r$/, '');
    if (!l.trim() || l.trimStart().startsWith('#')) continue;
    const eq = l.indexOf('=');
    const key = eq > 0 ? l.slice(0, eq).trim() : '';
    // Never echo the value: these lines usually carry secrets.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new UsageError(`expected KEY=VALUE lines with a valid variable name, found a line starting "${l.slice(0, Math.max(0, eq)).slice(0, 20) || '(no "=")'}".`, {}, field);
    out.push({ key, value: l.slice(eq + 1) });
  }
  return out;
}
