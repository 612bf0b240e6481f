// Go's path.Match and a Glob over any file system that can list a folder,
// so that every driver matches artifacts exactly as Djinn does (`*`, `?`,
// `[...]`; no `**`; `*` never crosses `/`).

export type EntryType = 'file' | 'dir' | 'other';

export interface GlobFs {
  /** Entries of a folder, or null when it cannot be listed. Types follow symlinks. */
  readdir(dir: string): Promise<{ name: string; type: EntryType }[] | null>;
  /** The type of a path (following symlinks), or null when it does not exist. */
  stat(p: string): Promise<EntryType | null>;
}

export function hasMeta(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

/** Go's path.Match. Throws on a malformed pattern (an unclosed `[`). */
export function pathMatch(pattern: string, name: string): boolean {
  return matchAt(pattern, 0, name, 0);
}

function matchAt(p: string, pi: number, s: string, si: number): boolean {
  while (pi < p.length) {
    const c = p[pi];
    if (c === '*') {
      while (p[pi] === '*') pi++;
      if (pi === p.length) return !s.slice(si).includes('/');
      for (let k = si; k <= s.length; k++) {
        if (k > si && s[k - 1] === '/') break;
        if (matchAt(p, pi, s, k)) return true;
      }
      validate(p, pi);
      return false;
    }
    if (si >= s.length) {
      validate(p, pi);
      return false;
    }
    if (c === '?') {
      if (s[si] === '/') return false;
      pi++;
      si++;
    } else if (c === '[') {
      const [ok, next] = matchClass(p, pi, s[si]);
      if (!ok || s[si] === '/') {
        validate(p, next);
        return false;
      }
      pi = next;
      si++;
    } else if (c === '\\') {
      if (pi + 1 >= p.length) throw new Error(`bad pattern "${p}": ends with a backslash`);
      if (p[pi + 1] !== s[si]) return false;
      pi += 2;
      si++;
    } else {
      if (c !== s[si]) return false;
      pi++;
      si++;
    }
  }
  return si === s.length;
}

function matchClass(p: string, start: number, ch: string): [boolean, number] {
  let i = start + 1;
  let negate = false;
  if (p[i] === '^') {
    negate = true;
    i++;
  }
  let matched = false;
  let first = true;
  for (;;) {
    if (i >= p.length) throw new Error(`bad pattern "${p}": unclosed "["`);
    if (p[i] === ']' && !first) {
      i++;
      break;
    }
    first = false;
    let lo = p[i];
    if (lo === '\\') lo = p[++i];
    if (lo === undefined) throw new Error(`bad pattern "${p}"`);
    i++;
    let hi = lo;
    if (p[i] === '-' && p[i + 1] !== ']' && p[i + 1] !== undefined) {
      hi = p[i + 1];
      if (hi === '\\') hi = p[++i + 1];
      i += 2;
    }
    if (lo <= ch && ch <= hi) matched = true;
  }
  return [matched !== negate, i];
}

/** Go reports bad patterns even when an earlier part fails to match: check the rest is well formed. */
function validate(p: string, from: number): void {
  for (let i = from; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '[') i = matchClass(p, i, '\u0000')[1] - 1;
  }
  if (p.endsWith('\\') && !p.endsWith('\\\\')) throw new Error(`bad pattern "${p}": ends with a backslash`);
}

function split(p: string): [string, string] {
  const at = p.lastIndexOf('/');
  if (at < 0) return ['', p];
  return [at === 0 ? '/' : p.slice(0, at), p.slice(at + 1)];
}

function join(dir: string, name: string): string {
  if (dir === '') return name;
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** Regular files matching `pattern`, sorted; relative patterns stay relative. */
export async function globFiles(pattern: string, fs: GlobFs): Promise<string[]> {
  const all = await glob(pattern, fs);
  const files: string[] = [];
  for (const p of all) if ((await fs.stat(p)) === 'file') files.push(p);
  return files.sort();
}

async function glob(pattern: string, fs: GlobFs): Promise<string[]> {
  pathMatch(pattern, ''); // throws on a bad pattern
  if (!hasMeta(pattern)) return (await fs.stat(pattern)) ? [pattern] : [];
  const [dir, file] = split(pattern);
  const dirs = hasMeta(dir) ? (await glob(dir, fs)).filter(Boolean) : [dir];
  const out: string[] = [];
  for (const d of dirs) {
    const entries = await fs.readdir(d === '' ? '.' : d);
    if (!entries) continue;
    for (const e of entries) if (pathMatch(file, e.name)) out.push(join(d, e.name));
  }
  return out.sort();
}
