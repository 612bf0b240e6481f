// Our glob must agree with Go's path.Match (which Djinn's SFTP Glob uses).
// Expectations are written from Go's documented rules: `*` is any run of
// non-'/' characters, `?` one non-'/' character, `[...]` a class with `^`
// negation, `lo-hi` ranges and `\` escapes, and a malformed pattern is an
// error (ErrBadPattern) even when the name would not match anyway.
import { describe, expect, it } from 'vitest';
import { BadPatternError, globFiles, hasMeta, pathMatch, type EntryType, type GlobFs } from '../src/util/glob.js';

const cases: [string, string, boolean | 'bad'][] = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a?b', 'a😀b', true],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['a[/]b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['*x', 'xxx', true],
  ['*.tar.gz', 'docs.tar.gz', true],
  ['*.tar.gz', 'docs.tar.gzip', false],
  ['.*', '.hidden', true],
  ['*', '.hidden', true],
  ['*', '', true],
  ['', '', true],
  ['', 'a', false],
  ['[]a]', ']', 'bad'],
  ['[-]', '-', 'bad'],
  ['[x-]', 'x', 'bad'],
  ['[x-]', '-', 'bad'],
  ['[-x]', 'x', 'bad'],
  ['\\', 'a', 'bad'],
  ['[a-b-c]', 'a', 'bad'],
  ['[', 'a', 'bad'],
  ['[^', 'a', 'bad'],
  ['[^bc', 'a', 'bad'],
  ['a[', 'a', 'bad'],
  ['a[', 'ab', 'bad'],
  ['a[', 'x', 'bad'],
  ['a/b[', 'x', 'bad'],
  ['x*[', 'y', 'bad'],
];

describe("pathMatch follows Go's path.Match", () => {
  it.each(cases)('%j against %j', (pattern, name, want) => {
    if (want === 'bad') expect(() => pathMatch(pattern, name)).toThrow(BadPatternError);
    else expect(pathMatch(pattern, name)).toBe(want);
  });

  it('names the pattern in the error', () => {
    expect(() => pathMatch('bin/[a', 'x')).toThrow(/bad pattern "bin\/\[a"/);
  });

  it('hasMeta is true exactly for * ? [ and backslash', () => {
    expect(['a*', 'a?', 'a[b]', 'a\\b'].map(hasMeta)).toEqual([true, true, true, true]);
    expect(['a/b.c', 'x-y_z', '/etc/os-release'].map(hasMeta)).toEqual([false, false, false]);
  });
});

/** A small in-memory tree: path → type. Directories are implied by their children. */
function memFs(files: Record<string, EntryType>): GlobFs {
  const all = new Map<string, EntryType>(Object.entries(files));
  for (const p of Object.keys(files)) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/') || '/';
      if (!all.has(d)) all.set(d, 'dir');
    }
  }
  const norm = (p: string) => (p === '.' ? '' : p.replace(/^\.\//, ''));
  return {
    async readdir(dir) {
      const d = norm(dir);
      if (d !== '' && all.get(d) !== 'dir') return null;
      const prefix = d === '' ? '' : d === '/' ? '/' : `${d}/`;
      const names = [...all.keys()].filter(
        (p) => p.startsWith(prefix) && p.length > prefix.length && !p.slice(prefix.length).includes('/'),
      );
      return names.map((p) => ({ name: p.slice(prefix.length), type: all.get(p)! }));
    },
    async stat(p) {
      return all.get(norm(p)) ?? null;
    },
  };
}

describe('globFiles', () => {
  const fs = memFs({
    'bin/app': 'file',
    'bin/app.sha256': 'file',
    'bin/tool': 'file',
    'bin/sub/deep': 'file',
    'logs/a.log': 'file',
    'logs/b.log': 'file',
    'logs/c.txt': 'file',
    'x/1/out.tar': 'file',
    'x/2/out.tar': 'file',
    'x/3': 'file',
    '/etc/os-release': 'file',
    fifo: 'other',
  });

  it('a literal path is returned when it exists, nothing when not', async () => {
    expect(await globFiles('bin/app', fs)).toEqual(['bin/app']);
    expect(await globFiles('bin/nope', fs)).toEqual([]);
    expect(await globFiles('/etc/os-release', fs)).toEqual(['/etc/os-release']);
  });

  it('* stays within one folder and only regular files are returned, sorted', async () => {
    expect(await globFiles('bin/*', fs)).toEqual(['bin/app', 'bin/app.sha256', 'bin/tool']);
    expect(await globFiles('logs/*.log', fs)).toEqual(['logs/a.log', 'logs/b.log']);
    expect(await globFiles('*', fs)).toEqual([]); // fifo is not a regular file, the rest are folders
  });

  it('meta characters in folder parts are expanded too', async () => {
    expect(await globFiles('x/*/out.tar', fs)).toEqual(['x/1/out.tar', 'x/2/out.tar']);
    expect(await globFiles('x/[12]/out.tar', fs)).toEqual(['x/1/out.tar', 'x/2/out.tar']);
    expect(await globFiles('*/app', fs)).toEqual(['bin/app']);
  });

  it('there is no ** and a bad pattern throws', async () => {
    expect(await globFiles('**/deep', fs)).toEqual([]);
    await expect(globFiles('bin/[', fs)).rejects.toThrow(BadPatternError);
  });

  it('a literal folder name is not returned (folders are not artifacts)', async () => {
    expect(await globFiles('bin', fs)).toEqual([]);
  });
});
