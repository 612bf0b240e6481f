// Path safety: artifact destinations stay inside the artifacts folder,
// object sources inside the objects folder (also through symlinks).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactDestination, isInside, objectSource } from '../src/util/paths.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'djinn-paths-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('artifactDestination', () => {
  const arts = path.join(root, 'artifacts');
  it.each([
    ['app', 'app'],
    ['bin/app', 'bin/app'],
    ['./bin/./app', 'bin/app'],
    ['debian/11', 'debian/11'],
    ['a..b', 'a..b'],
  ])('%j is inside', (rel, want) => {
    expect(artifactDestination(arts, rel)).toEqual({ path: path.join(arts, want) });
  });

  it.each([
    ['../x', /contains "\.\."/],
    ['a/../../x', /contains "\.\."/],
    ['a/../b', /contains "\.\."/],
    ['/etc/passwd', /absolute path/],
    ['C:\\x', /absolute path/],
    ['.', /not a file inside/],
    ['', /not a file inside/],
    ['..\\x', /contains "\.\."/],
  ])('%j is rejected', (rel, why) => {
    const r = artifactDestination(arts, rel);
    expect(r).toHaveProperty('error');
    expect((r as { error: string }).error).toMatch(why);
  });
});

describe('objectSource', () => {
  const objs = path.join(root, 'objects');
  mkdirSync(path.join(objs, 'sub'), { recursive: true });
  writeFileSync(path.join(objs, 'script.sh'), 'echo');
  writeFileSync(path.join(objs, 'sub', 'util.sh'), 'echo');
  writeFileSync(path.join(root, 'secret'), 'x');
  symlinkSync(path.join(root, 'secret'), path.join(objs, 'escape'));
  symlinkSync('script.sh', path.join(objs, 'alias.sh'));

  it('finds files inside, re-rooting an absolute src as Djinn does', () => {
    expect(objectSource(objs, 'script.sh')).toEqual({ path: path.join(objs, 'script.sh') });
    expect(objectSource(objs, 'sub/util.sh')).toEqual({ path: path.join(objs, 'sub', 'util.sh') });
    expect(objectSource(objs, '/sub/util.sh')).toEqual({ path: path.join(objs, 'sub', 'util.sh') });
  });

  it('follows a symlink that stays inside', () => {
    expect(objectSource(objs, 'alias.sh')).toEqual({ path: path.join(objs, 'script.sh') });
  });

  it('rejects .. and symlinks leading outside, and names a missing file', () => {
    expect(objectSource(objs, '../secret')).toEqual({ error: expect.stringContaining('contains ".."') as string });
    expect(objectSource(objs, 'escape')).toEqual({ error: expect.stringContaining('outside the objects folder') as string });
    expect(objectSource(objs, 'nope')).toEqual({ error: expect.stringContaining('not found') as string });
  });
});

describe('isInside', () => {
  it('is true for the root and below, false for siblings with a common prefix', () => {
    expect(isInside('/a/b', '/a/b')).toBe(true);
    expect(isInside('/a/b', '/a/b/c')).toBe(true);
    expect(isInside('/a/b', '/a/bc')).toBe(false);
    expect(isInside('/a/b', '/a')).toBe(false);
    expect(isInside('/a/b', '/a/b/..c')).toBe(true);
  });
});
