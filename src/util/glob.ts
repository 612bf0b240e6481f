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

/** A malformed pattern, as Go's path.ErrBadPattern. */
export class BadPatternError extends Error {
  constructor(pattern: string, why: string) {
    super(`bad pattern "${pattern}": ${why}`);
    this.name = 'BadPatternError';
  }
}

type Token = { t: 'star' } | { t: 'any' } | { t: 'lit'; c: string } | { t: 'class'; negate: boolean; ranges: [string, string][] };

/**
 * Splits a pattern into terms, checking all of it first: like Go (since 1.16),
 * a bad pattern is an error even where an earlier part would not match.
 * Works on code points, so `?` matches one character, not one UTF-16 unit.
 */
function compile(pattern: string): Token[] {
  const p = Array.from(pattern);
  const out: Token[] = [];
  let i = 0;
  const bad = (why: string): never => {
    throw new BadPatternError(pattern, why);
  };
  // One character of a class: `\c` is c; an unescaped `-` or `]` cannot start a range.
  const classChar = (): string => {
    if (i >= p.length) return bad('unclosed "["');
    let c = p[i];
    if (c === '-' || c === ']') return bad(`"${c}" must be escaped inside "[...]"`);
    if (c === '\\') {
      i++;
      if (i >= p.length) return bad('unclosed "["');
      c = p[i];
    }
    i++;
    return c;
  };
  while (i < p.length) {
    const c = p[i];
    if (c === '*') {
      while (p[i] === '*') i++;
      out.push({ t: 'star' });
    } else if (c === '?') {
      out.push({ t: 'any' });
      i++;
    } else if (c === '\\') {
      if (i + 1 >= p.length) bad('ends with a backslash');
      out.push({ t: 'lit', c: p[i + 1] });
      i += 2;
    } else if (c === '[') {
      i++;
      let negate = false;
      if (p[i] === '^') {
        negate = true;
        i++;
      }
      const ranges: [string, string][] = [];
      for (;;) {
        if (ranges.length > 0 && p[i] === ']') {
          i++;
          break;
        }
        const lo = classChar();
        let hi = lo;
        if (p[i] === '-') {
          i++;
          hi = classChar();
        }
        ranges.push([lo, hi]);
      }
      out.push({ t: 'class', negate, ranges });
    } else {
      out.push({ t: 'lit', c });
      i++;
    }
  }
  return out;
}

function matchOne(tok: Token, ch: string): boolean {
  if (tok.t === 'lit') return tok.c === ch;
  if (ch === '/') return false; // `?` and classes never match the separator
  if (tok.t === 'any') return true;
  if (tok.t === 'class') {
    const cp = ch.codePointAt(0)!;
    const hit = tok.ranges.some(([lo, hi]) => lo.codePointAt(0)! <= cp && cp <= hi.codePointAt(0)!);
    return hit !== tok.negate;
  }
  return false;
}

/** Go's path.Match: the whole name must match; `*` and `?` never match `/`. Throws BadPatternError. */
export function pathMatch(pattern: string, name: string): boolean {
  const toks = compile(pattern);
  const s = Array.from(name);
  // memo[ti][si]: does toks[ti..] match s[si..]? Patterns and names are short.
  const memo = new Map<number, boolean>();
  const at = (ti: number, si: number): boolean => {
    const key = ti * (s.length + 1) + si;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let ok: boolean;
    const tok = toks[ti];
    if (!tok) ok = si === s.length;
    else if (tok.t === 'star') ok = at(ti + 1, si) || (si < s.length && s[si] !== '/' && at(ti, si + 1));
    else ok = si < s.length && matchOne(tok, s[si]) && at(ti + 1, si + 1);
    memo.set(key, ok);
    return ok;
  };
  return at(0, 0);
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
  compile(pattern); // throws on a bad pattern, as Go's Glob returns ErrBadPattern
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
