// Every bad manifest under corpus/bad must give exactly the one-line error in
// its .expected file, exit status 2 (from `lint` and from a run), and no stack
// trace. Every manifest under corpus/warn must lint with exit 0 and print
// exactly the warnings in its .expected file. Every manifest under corpus/plan
// (scalars Djinn's go-yaml v2 reads as strings: `- true`, `stages: [1, 2]`,
// nulls) must plan with exit 0 to exactly its .expected text.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './helpers/cli.js';

const CORPUS = path.join(ROOT, '__tests__', 'corpus');
const yamls = (dir: string) =>
  readdirSync(path.join(CORPUS, dir))
    .filter((f) => f.endsWith('.yml'))
    .sort();
const expected = (dir: string, f: string) => readFileSync(path.join(CORPUS, dir, f.replace(/\.yml$/, '.expected')), 'utf8').trimEnd();

const LOCATED = /^[\w.-]+\.yml:\d+:\d+: [\w.[\]]+: /;

describe('bad manifests', () => {
  const bad = yamls('bad');
  it('the corpus has at least 40 bad manifests, each with its expected message', () => {
    expect(bad.length).toBeGreaterThanOrEqual(40);
    for (const f of bad) {
      const e = expected('bad', f);
      expect(e.split('\n'), f).toHaveLength(1);
      // file:line:column: field: message
      expect(e, f).toMatch(LOCATED);
      expect(e.startsWith(`${f}:`), f).toBe(true);
    }
  });

  it.each(bad)('lint %s exits 2 with its exact message', async (f) => {
    const r = await runCli(['lint', f], { cwd: path.join(CORPUS, 'bad') });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`djinn: ${expected('bad', f)}\n`);
    expect(r.stdout).toBe('');
  });

  it.each(bad)('running %s exits 2 before anything runs', async (f) => {
    const r = await runCli(['-manifest', f, '-driver', '/dev/null'], { cwd: path.join(CORPUS, 'bad') });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`djinn: ${expected('bad', f)}\n`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).not.toContain('Running with driver');
  });

  it('plan -manifest on a bad manifest exits 2 with the same message', async () => {
    const f = '17-env-no-equals.yml';
    const r = await runCli(['plan', '-manifest', f, '--json'], { cwd: path.join(CORPUS, 'bad') });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`djinn: ${expected('bad', f)}\n`);
  });
});

describe('manifests with warnings', () => {
  const warn = yamls('warn');
  it.each(warn)('lint %s exits 0 and prints its warnings', async (f) => {
    const r = await runCli(['lint', f], { cwd: path.join(CORPUS, 'warn') });
    expect(r.code).toBe(0);
    const lines = expected('warn', f).split('\n');
    expect(r.stderr).toBe(lines.map((l) => `warning: ${l}\n`).join(''));
    expect(r.stdout).toBe(`${f}: ok (${lines.length} warning${lines.length > 1 ? 's' : ''})\n`);
  });

  it('plan --json carries the warnings with their line and column', async () => {
    const r = await runCli(['plan', '-manifest', '03-stage-not-listed.yml', '--json'], { cwd: path.join(CORPUS, 'warn') });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { warnings: unknown[]; stages: { name: string; jobs: { name: string }[] }[] };
    expect(plan.warnings).toEqual([
      { line: 7, column: 5, message: 'job "upload" will not run: its stage "deploy" is not listed in stages.' },
    ]);
    expect(plan.stages.flatMap((s) => s.jobs.map((j) => j.name))).toEqual(['build.1']);
  });

  it('lint of several files reports each and exits with the worst status', async () => {
    const r = await runCli(['lint', path.join(CORPUS, 'warn', '06-namespace.yml'), path.join(CORPUS, 'bad', '09-unknown-driver.yml')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('06-namespace.yml: ok (1 warning)');
    expect(r.stderr).toContain('unknown driver type "vagrant"');
  });
});

describe('manifests Djinn accepts as written', () => {
  const plans = yamls('plan');
  it.each(plans)('plan %s exits 0 with its expected plan', async (f) => {
    const r = await runCli(['plan', f], { cwd: path.join(CORPUS, 'plan') });
    expect(r.stderr).not.toMatch(/error|djinn:/);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd()).toBe(expected('plan', f));
  });

  it('lint accepts every one of them', async () => {
    const r = await runCli(['lint', ...plans], { cwd: path.join(CORPUS, 'plan') });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.includes(': ok'))).toHaveLength(plans.length);
  });
});
