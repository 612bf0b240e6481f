// Parsing rules of the manifest engine, one by one (Djinn's documented
// v1.3.0 behaviour with its bugs fixed).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { parseManifest, parsePassthrough, parseSource } from '../src/manifest/parse.js';
import { cloneCommands, makePlan } from '../src/manifest/plan.js';
import { jobScript, scriptFileName } from '../src/runner/script.js';
import { envFile } from '../src/core/shell.js';

const HEAD = 'driver:\n  type: os\n';

describe('passthrough: src [=> dst]', () => {
  it.each([
    ['bin/app => app', 'bin/app', 'app'],
    ['  bin/app   =>   out/app  ', 'bin/app', 'out/app'],
    ['bin/app=>app', 'bin/app', 'app'],
    ['djinn/bin/djinn', 'djinn/bin/djinn', 'djinn'],
    ['/etc/os-release', '/etc/os-release', 'os-release'],
    ['debian => debian/11', 'debian', 'debian/11'],
    ['mgrt/bin/mgrt => mgrt-sqlite3', 'mgrt/bin/mgrt', 'mgrt-sqlite3'],
    ['a => b => c', 'a', 'b => c'], // split at the first =>
    ['logs/*.log => logs/*', 'logs/*.log', 'logs/*'],
    ['out/', 'out/', 'out'],
    ['file with spaces.txt', 'file with spaces.txt', 'file with spaces.txt'],
  ])('%j', (text, src, dst) => {
    expect(parsePassthrough(text)).toEqual({ src, dst });
  });

  it.each(['=> x', 'x =>', ' => ', ''])('%j is an error', (text) => {
    expect(parsePassthrough(text)).toHaveProperty('error');
  });
});

describe('sources: url [ref] [=> dir]', () => {
  it.each([
    ['https://github.com/git/git v1.2.3 => git-v1.2.3', 'https://github.com/git/git', 'v1.2.3', 'git-v1.2.3'],
    ['https://github.com/git/git => git-build', 'https://github.com/git/git', '', 'git-build'],
    ['https://github.com/andrewpillar/mgrt v3', 'https://github.com/andrewpillar/mgrt', 'v3', 'mgrt'],
    ['https://github.com/djinn-ci/imgsrv.git', 'https://github.com/djinn-ci/imgsrv.git', '', 'imgsrv'],
    ['git@github.com:andrewpillar/mgrt.git', 'git@github.com:andrewpillar/mgrt.git', '', 'mgrt'],
    ['git@host:repo.git main', 'git@host:repo.git', 'main', 'repo'],
    ['https://example.com/owner/repo/', 'https://example.com/owner/repo/', '', 'repo'], // trailing / ignored
    ['https://example.com/repo.git\tv2', 'https://example.com/repo.git', 'v2', 'repo'], // tab is a blank
    ['  https://x.org/a/b.git   main   =>   src/b  ', 'https://x.org/a/b.git', 'main', 'src/b'],
    ['https://x.org/a/b.git=>c', 'https://x.org/a/b.git', '', 'c'],
    ['/srv/git/project.git', '/srv/git/project.git', '', 'project'],
  ])('%j', (text, url, ref, dir) => {
    const s = parseSource(text);
    expect(s).toMatchObject({ url, ref, dir });
  });

  it.each(['', '=> dir', 'https://x/y v1 =>', 'https://'])('%j is an error', (text) => {
    expect(parseSource(text)).toHaveProperty('error');
  });

  it("clone commands are Djinn's offline ones", () => {
    expect(cloneCommands({ url: 'https://github.com/git/git', ref: 'v1.2.3', dir: 'git-v1.2.3', position: {} })).toEqual([
      'mkdir -p git-v1.2.3',
      'git clone https://github.com/git/git git-v1.2.3',
      'cd git-v1.2.3',
      'git checkout -q v1.2.3',
    ]);
    expect(cloneCommands({ url: 'u', ref: '', dir: 'd', position: {} })).toEqual(['mkdir -p d', 'git clone u d']);
  });
});

describe('manifest fields', () => {
  it('keeps manifest order everywhere and the same src twice', () => {
    const m = parseManifest(
      `${HEAD}env:\n  - B=2\n  - A=1\nobjects:\n  - z.sh\n  - a.sh\n  - z.sh => other.sh\nstages: [b, a]\njobs:\n` +
        `  - stage: a\n    commands: [x]\n  - stage: b\n    commands: [y]\n    artifacts:\n      - out => one\n` +
        `      - out => two\n`,
    );
    expect(m.env.map((e) => e.key)).toEqual(['B', 'A']);
    expect(m.objects.map((o) => [o.src, o.dst])).toEqual([
      ['z.sh', 'z.sh'],
      ['a.sh', 'a.sh'],
      ['z.sh', 'other.sh'],
    ]);
    expect(m.stages.map((s) => s.name)).toEqual(['b', 'a']);
    expect(m.jobs[1].artifacts.map((a) => a.dst)).toEqual(['one', 'two']);
    const plan = makePlan(m);
    expect(plan.stages.map((s) => s.name)).toEqual(['b', 'a']);
  });

  it('splits env at the first "=", keeping the rest of the value exactly', () => {
    const m = parseManifest(`${HEAD}env:\n  - "A=x=y"\n  - "B="\n  - "C= spaced  "\n  - 'D=$HOME "q" \\\\n'\n`);
    expect(m.env.map((e) => [e.key, e.value])).toEqual([
      ['A', 'x=y'],
      ['B', ''],
      ['C', ' spaced  '],
      ['D', '$HOME "q" \\\\n'],
    ]);
  });

  it('names unnamed jobs <stage>.<n>, counting from 1 within each stage', () => {
    const m = parseManifest(
      `${HEAD}stages: [a, b]\njobs:\n  - {stage: a, commands: [x]}\n  - {stage: b, commands: [x]}\n` +
        `  - {stage: a, name: named, commands: [x]}\n  - {stage: a, commands: [x]}\n  - {stage: b, commands: [x]}\n`,
    );
    expect(m.jobs.map((j) => j.name)).toEqual(['a.1', 'b.1', 'named', 'a.3', 'b.2']);
  });

  it('the same explicit name in different stages is fine', () => {
    const m = parseManifest(
      `${HEAD}stages: [a, b]\njobs:\n  - {stage: a, name: x, commands: [x]}\n  - {stage: b, name: x, commands: [x]}\n`,
    );
    expect(m.jobs.map((j) => `${j.stage}/${j.name}`)).toEqual(['a/x', 'b/x']);
  });

  it('multi-line commands are kept verbatim', () => {
    const m = parseManifest(
      `${HEAD}stages: [a]\njobs:\n  - stage: a\n    commands:\n      - |\n        if true; then\n          echo yes\n        fi\n`,
    );
    expect(m.jobs[0].commands).toEqual(['if true; then\n  echo yes\nfi\n']);
  });

  it('keeps every driver key as a string and forces arch x86_64 for qemu', () => {
    const m = parseManifest('driver:\n  type: qemu\n  image: debian/stable\n');
    expect(m.driver.options).toEqual({ type: 'qemu', image: 'debian/stable', arch: 'x86_64' });
    const d = parseManifest('driver:\n  type: docker\n  image: golang:1.22\n  workspace: /go/src\n');
    expect(d.driver.options).toEqual({ type: 'docker', image: 'golang:1.22', workspace: '/go/src' });
  });

  it('accepts null and missing lists as empty', () => {
    const m = parseManifest(`${HEAD}env:\nobjects: ~\nstages: []\njobs:\n`);
    expect([m.env, m.objects, m.stages, m.jobs]).toEqual([[], [], [], []]);
  });

  it('follows YAML anchors and merge keys', () => {
    const m = parseManifest(
      `${HEAD}stages: [a]\nx-base: &base\n  stage: a\n  commands: [make]\njobs:\n  - <<: *base\n    name: one\n  - *base\n`,
    );
    expect(m.jobs.map((j) => [j.name, j.commands])).toEqual([
      ['one', ['make']],
      ['a.2', ['make']],
    ]);
  });

  it('puts warnings at the line and column of what they are about', () => {
    const m = parseManifest(`${HEAD}stages: [a]\nallow_failures: [a, b]\njobs:\n  - stage: a\n    comands: [x]\n`, 'm.yml');
    expect(m.warnings).toEqual([
      { file: 'm.yml', line: 4, column: 21, message: 'allow_failures names "b", which is not a stage; it has no effect.' },
      { file: 'm.yml', line: 7, column: 5, message: 'unknown field "comands" in jobs[0] is ignored.' },
      { file: 'm.yml', line: 6, column: 5, message: 'job "a.1" has no commands; it passes without running.' },
    ]);
  });

  it('throws UsageError (never a plain Error) with file, line, column and field', () => {
    try {
      parseManifest(`${HEAD}env:\n  - NOEQUALS\n`, 'x.yml');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      expect((e as UsageError).position).toEqual({ file: 'x.yml', line: 4, column: 5 });
      expect((e as UsageError).field).toBe('env[0]');
    }
  });
});

describe('plan', () => {
  const text =
    `${HEAD}sources:\n  - https://github.com/a/b.git\nstages: [one, two]\nallow_failures: [two]\njobs:\n` +
    `  - {stage: one, commands: [x]}\n  - {stage: two, commands: [y]}\n`;

  it('puts the setup stage first only when there are sources', () => {
    expect(makePlan(parseManifest(text)).stages.map((s) => [s.name, s.allowFailures])).toEqual([
      ['setup', false],
      ['one', false],
      ['two', true],
    ]);
    const none = parseManifest(`${HEAD}stages: [one]\njobs:\n  - {stage: one, commands: [x]}\n`);
    expect(makePlan(none).stages.map((s) => s.name)).toEqual(['one']);
  });

  it('-stage keeps setup and that stage; an unknown stage lists the stages', () => {
    const m = parseManifest(text, 'm.yml');
    expect(makePlan(m, { stage: 'two' }).stages.map((s) => s.name)).toEqual(['setup', 'two']);
    expect(() => makePlan(m, { stage: 'three' })).toThrow('unknown stage "three"; the manifest\'s stages are: one, two.');
  });

  it('-stage setup runs just the clones when no stage of the manifest is called setup', () => {
    expect(makePlan(parseManifest(text), { stage: 'setup' }).stages.map((s) => s.name)).toEqual(['setup']);
    const noSources = parseManifest(`${HEAD}stages: [one]\njobs:\n  - {stage: one, commands: [x]}\n`);
    expect(() => makePlan(noSources, { stage: 'setup' })).toThrow('unknown stage "setup"');
  });
});

describe('job script', () => {
  it("is Djinn's: shebang, exec 2>&1, set -ex, a blank line, then each command", () => {
    expect(jobScript(['echo a', 'make\n'])).toBe('#!/bin/sh\nexec 2>&1\nset -ex\n\necho a\nmake\n\n');
  });
  it('script names have no spaces or slashes', () => {
    expect(scriptFileName('build it/now')).toBe('build-it-now.sh');
    expect(scriptFileName('..x')).toBe('_x.sh');
  });
  it('env files quote every byte', () => {
    expect(envFile([{ key: 'A', value: "it's $x\n" }])).toBe("export A='it'\\''s $x\n'\n");
  });
});
