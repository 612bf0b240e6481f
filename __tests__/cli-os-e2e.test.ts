// End to end: spawn the bundled CLI (dist/cli.js; run `npm run build` first)
// on manifests with the `os` driver, and check exit codes, live output,
// artifacts on disk, timeouts, signals, env and path safety.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_FLAGS } from '../src/cli/flag-specs.js';
import { VERSION } from '../src/core/version.js';
import { CLI, runCli, startCli, type CliRun } from './helpers/cli.js';

let base: string;
const started: CliRun[] = [];
const pidsToReap: number[] = [];

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  base = mkdtempSync(path.join(os.tmpdir(), 'djinn-e2e-'));
});

afterAll(() => {
  for (const r of started) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const pid of pidsToReap) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  rmSync(base, { recursive: true, force: true });
});

let n = 0;
/** A fresh folder with the manifest in it; returns the folder and where artifacts go. */
function project(manifest: string, files: Record<string, string> = {}): { dir: string; arts: string; args: string[] } {
  const dir = path.join(base, `p${++n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, '.djinn.yml'), manifest);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  }
  const arts = path.join(dir, 'artifacts');
  // -driver /dev/null: an empty driver.conf, whatever the user's config folder holds.
  return { dir, arts, args: ['-driver', '/dev/null', '-artifacts', arts] };
}

function run(p: { dir: string; args: string[] }, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return runCli([...p.args, ...extra], { cwd: p.dir, env });
}

function start(p: { dir: string; args: string[] }, extra: string[] = []): CliRun {
  const r = startCli([...p.args, ...extra], { cwd: p.dir });
  started.push(r);
  return r;
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The summary table's status for a job. */
function statusOf(stdout: string, job: string): string | undefined {
  const line = stdout.split('\n').find((l) => l.split(/\s+/)[1] === job && /^\S+\s+\S+\s+[a-z_]+\s/.test(l));
  return line?.split(/\s+/)[2];
}

const OS = 'driver:\n  type: os\n';

describe('exit status and stages', () => {
  it('a passing build exits 0 with a header per job and a summary table', async () => {
    const p = project(
      `${OS}stages: [build, test]\njobs:\n  - stage: build\n    commands: [echo building]\n  - stage: test\n    name: unit\n    commands: [echo testing]\n`,
    );
    const r = await run(p);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Running with driver os...');
    expect(r.stdout).toContain('==> Running job build.1 in stage build\n+ echo building\nbuilding\n');
    expect(r.stdout).toMatch(/STAGE\s+JOB\s+STATUS\s+DURATION/);
    expect(statusOf(r.stdout, 'build.1')).toBe('passed');
    expect(statusOf(r.stdout, 'unit')).toBe('passed');
    expect(r.stdout).toMatch(/Done\. Build passed in /);
  });

  it('a failure in an allow_failures stage is passed_with_failures, the build goes on and exits 0', async () => {
    const p = project(
      `${OS}stages: [lint, build]\nallow_failures: [lint]\njobs:\n  - stage: lint\n    commands: ["exit 4"]\n` +
        `  - stage: build\n    commands: [touch built]\n    artifacts: [built]\n`,
    );
    const r = await run(p);
    expect(r.code).toBe(0);
    expect(statusOf(r.stdout, 'lint.1')).toBe('passed_with_failures');
    expect(r.stderr).toBe('warning: .djinn.yml:6:5: job lint.1 in stage lint failed (failures allowed in this stage): exit status 4\n');
    expect(statusOf(r.stdout, 'build.1')).toBe('passed');
    expect(existsSync(path.join(p.arts, 'built'))).toBe(true);
    expect(r.stdout).toMatch(/Done\. Build passed_with_failures in /);
  });

  it('a failed job exits 1, its artifacts are still collected, and nothing after it runs', async () => {
    const marker = path.join(base, `never-${n}`);
    const p = project(
      `${OS}stages: [one, two]\njobs:\n  - stage: one\n    commands:\n      - echo partial > log.txt\n` +
        `      - "false"\n      - echo unreachable\n    artifacts: [log.txt]\n  - stage: one\n    name: second\n` +
        `    commands: [touch ${marker}]\n  - stage: two\n    commands: [touch ${marker}]\n`,
    );
    const r = await run(p);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('unreachable\n');
    expect(readFileSync(path.join(p.arts, 'log.txt'), 'utf8')).toBe('partial\n');
    expect(existsSync(marker)).toBe(false);
    expect(statusOf(r.stdout, 'one.1')).toBe('failed');
    expect(statusOf(r.stdout, 'second')).toBe('skipped');
    expect(statusOf(r.stdout, 'two.1')).toBe('skipped');
    expect(r.stderr).toContain('djinn: job one.1 in stage one failed: exit status 1\n');
  });

  it('a job whose stage is not listed does not run', async () => {
    const marker = path.join(base, `off-${n}`);
    const p = project(`${OS}stages: [a]\njobs:\n  - stage: a\n    commands: [echo a]\n  - stage: off\n    commands: [touch ${marker}]\n`);
    const r = await run(p);
    expect(r.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(r.stderr).toContain('job "off.1" will not run: its stage "off" is not listed in stages.');
  });

  it('-stage runs that stage only; an unknown stage exits 2 naming the stages', async () => {
    const p = project(
      `${OS}stages: [a, b, c]\njobs:\n  - {stage: a, commands: [echo ran-a]}\n  - {stage: b, commands: [echo ran-b]}\n  - {stage: c, commands: [echo ran-c]}\n`,
    );
    const r = await run(p, ['-stage', 'b']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ran-b');
    expect(r.stdout).not.toContain('ran-a');
    expect(r.stdout).not.toContain('ran-c');
    const bad = await run(p, ['-stage', 'z']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('djinn: .djinn.yml: -stage: unknown stage "z"; the manifest\'s stages are: a, b, c.\n');
  });
});

describe('live output', () => {
  it('shows a line before the job ends', async () => {
    const gate = path.join(base, `gate-${n}`);
    const p = project(
      `${OS}stages: [a]\njobs:\n  - stage: a\n    commands:\n      - echo first-line\n` +
        `      - while [ ! -e ${gate} ]; do sleep 0.1; done\n      - echo second-line\n`,
    );
    const r = start(p);
    // The job cannot end before the gate exists, so seeing its first line now proves it streamed.
    await r.waitFor(/^first-line$/m);
    expect(r.child.exitCode).toBeNull();
    writeFileSync(gate, '');
    const res = await r.done;
    expect(res.code).toBe(0);
    expect(res.stdout.indexOf('first-line')).toBeLessThan(res.stdout.indexOf('second-line'));
  });

  it('a job does not wait for processes it left in the background', async () => {
    const p = project(
      `${OS}stages: [a, b]\njobs:\n  - stage: a\n    commands:\n      - sleep 300 &\n      - echo $! > bg.pid\n` +
        `    artifacts: [bg.pid]\n  - stage: b\n    commands: [echo next]\n`,
    );
    const r = await run(p);
    expect(r.code).toBe(0);
    const pid = Number(readFileSync(path.join(p.arts, 'bg.pid'), 'utf8'));
    pidsToReap.push(pid);
    expect(statusOf(r.stdout, 'b.1')).toBe('passed');
    // and the driver ends it when the build is over
    expect(alive(pid)).toBe(false);
  });
});

describe('timeouts and signals', () => {
  const sleepy = (pidDir: string) =>
    `${OS}stages: [a, b]\njobs:\n  - stage: a\n    commands:\n      - sleep 600 &\n      - echo $! > ${pidDir}/bg\n` +
    `      - echo $$ > ${pidDir}/sh\n      - echo started\n      - sleep 600\n  - stage: b\n` +
    `    commands: [echo never-runs]\n`;
  const pids = (dir: string) => ['bg', 'sh'].map((f) => Number(readFileSync(path.join(dir, f), 'utf8')));

  it('-job-timeout stops the job: timed_out, exit 1, no process left', async () => {
    const pidDir = mkdtempSync(path.join(base, 'pids-'));
    const p = project(sleepy(pidDir));
    const r = await run(p, ['-job-timeout', '2s']);
    expect(r.code).toBe(1);
    expect(statusOf(r.stdout, 'a.1')).toBe('timed_out');
    expect(statusOf(r.stdout, 'b.1')).toBe('skipped');
    expect(r.stdout).not.toContain('never-runs');
    expect(r.stderr).toContain('the job ran longer than its timeout of 2.0s');
    for (const pid of pids(pidDir)) expect(alive(pid)).toBe(false);
  });

  it('-timeout stops the build: timed_out, exit 1', async () => {
    const pidDir = mkdtempSync(path.join(base, 'pids-'));
    const p = project(sleepy(pidDir));
    const r = await run(p, ['-timeout', '2s']);
    expect(r.code).toBe(1);
    expect(statusOf(r.stdout, 'a.1')).toBe('timed_out');
    expect(r.stdout).toMatch(/Done\. Build timed_out in /);
    for (const pid of pids(pidDir)) expect(alive(pid)).toBe(false);
  });

  it('-timeout still collects the artifacts of the job it stopped (they often show why it hung)', async () => {
    const p = project(
      `${OS}stages: [a]\njobs:\n  - stage: a\n    commands:\n      - echo got-this-far > progress.log\n      - sleep 600\n    artifacts: [progress.log]\n`,
    );
    const r = await run(p, ['-timeout', '2s']);
    expect(r.code).toBe(1);
    expect(statusOf(r.stdout, 'a.1')).toBe('timed_out');
    expect(r.stdout).toContain('The build timed out; collecting the artifacts of job a.1');
    expect(readFileSync(path.join(p.arts, 'progress.log'), 'utf8')).toBe('got-this-far\n');
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s mid-job: killed, exit %i, no process of the job left', async (sig, code) => {
    const pidDir = mkdtempSync(path.join(base, 'pids-'));
    const p = project(sleepy(pidDir));
    const r = start(p);
    await r.waitFor(/^started$/m);
    const [bg, sh] = pids(pidDir);
    pidsToReap.push(bg, sh);
    expect(alive(bg) && alive(sh)).toBe(true);
    r.child.kill(sig);
    const res = await r.done;
    expect(res.code).toBe(code);
    expect(statusOf(res.stdout, 'a.1')).toBe('killed');
    expect(statusOf(res.stdout, 'b.1')).toBe('skipped');
    expect(res.stderr).toContain(`djinn: ${sig}: stopping the build...`);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(alive(bg)).toBe(false);
    expect(alive(sh)).toBe(false);
  });

  it('a bad duration is a usage error', async () => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [echo]}\n`);
    const r = await run(p, ['-timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('djinn: -timeout: invalid duration "soon": write e.g. 90s, 30m or 1h30m.\n');
  });
});

describe('env', () => {
  const values: Record<string, string> = {
    SPACES: '  two  spaces  ',
    QUOTES: `it's "quoted"`,
    DOLLAR: '$HOME ${PATH} $(id) `id`',
    BACKSLASH: 'a\\b\\\\c\\n',
    NEWLINES: 'line1\nline2\n',
    EQUALS: 'a=b=c',
    EMPTY: '',
  };

  it('manifest env values arrive exactly; host env does not leak in', async () => {
    const env = Object.entries(values)
      .map(([k, v]) => `  - ${JSON.stringify(`${k}=${v}`)}\n`)
      .join('');
    const cmds = Object.keys(values)
      .map((k) => `      - printf '%s' "$${k}" > ${k}.val\n`)
      .join('');
    const arts = Object.keys(values)
      .map((k) => `      - ${k}.val\n`)
      .join('');
    const p = project(
      `${OS}env:\n${env}stages: [a]\njobs:\n  - stage: a\n    commands:\n` +
        `${cmds}      - printf '%s' "\${HOST_ONLY_SECRET-unset}" > host.val\n      - printf '%s' "$HOME" > home.val\n` +
        `      - pwd > pwd.val\n    artifacts:\n${arts}      - host.val\n      - home.val\n      - pwd.val\n`,
    );
    const r = await run(p, [], { HOST_ONLY_SECRET: 'leaked' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const [k, v] of Object.entries(values)) expect(readFileSync(path.join(p.arts, `${k}.val`), 'utf8'), k).toBe(v);
    expect(readFileSync(path.join(p.arts, 'host.val'), 'utf8')).toBe('unset');
    // HOME is the build's working folder, where jobs start
    const home = readFileSync(path.join(p.arts, 'home.val'), 'utf8');
    expect(readFileSync(path.join(p.arts, 'pwd.val'), 'utf8')).toBe(`${home}\n`);
    expect(home).not.toBe(os.homedir());
  });
});

describe('artifacts', () => {
  const job = (arts: string[]) =>
    `${OS}stages: [a, b]\njobs:\n  - stage: a\n    commands:\n      - mkdir -p out/sub\n` +
    `      - echo one > out/one.txt\n      - echo two > out/two.txt\n      - echo log > out/run.log\n` +
    `      - echo deep > out/sub/deep.txt\n    artifacts:\n${arts.map((a) => `      - ${JSON.stringify(a)}\n`).join('')}` +
    `  - stage: b\n    commands: [echo stage-b-ran]\n`;

  it("renames, creates subfolders, and a * destination takes each match's name", async () => {
    const p = project(
      job(['out/one.txt', 'out/two.txt => renamed/2.txt', 'out/*.txt => txt/*', 'out/*.log => logs/build-*', 'out/*/deep.txt']),
    );
    const r = await run(p);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const read = (f: string) => readFileSync(path.join(p.arts, f), 'utf8');
    expect(read('one.txt')).toBe('one\n');
    expect(read('renamed/2.txt')).toBe('two\n');
    expect(read('txt/one.txt')).toBe('one\n');
    expect(read('txt/two.txt')).toBe('two\n');
    expect(read('logs/build-run.log')).toBe('log\n');
    expect(read('deep.txt')).toBe('deep\n');
    expect(existsSync(path.join(p.arts, 'txt', 'run.log'))).toBe(false);
    expect(r.stdout).toContain('\nCollecting artifact out/two.txt => renamed/2.txt\n');
  });

  it('several matches into one fixed destination is an error that fails the build at its end; no match is a warning; the build goes on', async () => {
    const p = project(job(['out/*.txt => all.txt', 'out/*.none', 'missing.bin']));
    const r = await run(p);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: 1 artifact could not be collected (see the artifact errors above)');
    expect(r.stderr).toContain(
      '.djinn.yml:13:9: artifact error: out/*.txt matches 2 files (out/one.txt, out/two.txt) but the destination "all.txt" has no "*"',
    );
    expect(r.stderr).toContain('warning: .djinn.yml:14:9: artifact out/*.none: no file matches the pattern; nothing collected.');
    expect(r.stderr).toContain('warning: .djinn.yml:15:9: artifact missing.bin: no such file in the machine; nothing collected.');
    expect(existsSync(path.join(p.arts, 'all.txt'))).toBe(false);
    expect(r.stdout).toContain('stage-b-ran');
  });

  it('a destination with .. or an absolute path is rejected with a clear error; the build goes on and fails at its end', async () => {
    const p = project(
      job(['out/one.txt => ../escaped.txt', 'out/one.txt => sub/../../escaped2.txt', 'out/one.txt => /tmp/abs-escape.txt', 'out/two.txt']),
    );
    const r = await run(p);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: .djinn.yml:13:9: artifact error: destination "../escaped.txt" contains ".."; artifact destinations must stay inside the artifacts folder.',
    );
    expect(r.stderr).toContain('destination "sub/../../escaped2.txt" contains ".."');
    expect(r.stderr).toContain(
      'error: .djinn.yml:15:9: artifact error: destination "/tmp/abs-escape.txt" is an absolute path; artifact ' +
        'destinations are relative to the artifacts folder.',
    );
    expect(existsSync(path.join(p.dir, 'escaped.txt'))).toBe(false);
    expect(existsSync(path.join(path.dirname(p.dir), 'escaped2.txt'))).toBe(false);
    expect(existsSync('/tmp/abs-escape.txt')).toBe(false);
    expect(readFileSync(path.join(p.arts, 'two.txt'), 'utf8')).toBe('two\n');
    expect(r.stdout).toContain('stage-b-ran');
  });

  it('a bad glob pattern is an artifact error, not a crash', async () => {
    const p = project(job(['out/[.txt']));
    const r = await run(p);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('artifact error: out/[.txt: bad pattern "out/[.txt"');
  });
});

describe('objects', () => {
  it('are placed with mode 0700, into subfolders, from the objects folder', async () => {
    const p = project(
      `${OS}objects:\n  - script.sh\n  - lib/util.sh => tools/util.sh\nstages: [a]\njobs:\n  - stage: a\n` +
        `    commands:\n      - ./script.sh > out.txt\n      - stat -c %a script.sh tools/util.sh > modes.txt\n` +
        `    artifacts: [out.txt, modes.txt]\n`,
      { 'objs/script.sh': '#!/bin/sh\necho from-object\n', 'objs/lib/util.sh': 'echo util\n' },
    );
    const r = await run(p, ['-objects', path.join(p.dir, 'objs')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Placing object script.sh => script.sh\n');
    expect(r.stdout).toContain('Placing object lib/util.sh => tools/util.sh\n');
    expect(readFileSync(path.join(p.arts, 'out.txt'), 'utf8')).toBe('from-object\n');
    expect(readFileSync(path.join(p.arts, 'modes.txt'), 'utf8')).toBe('700\n700\n');
  });

  it('a source escaping the objects folder through .. or a symlink is rejected, and the build fails before its first job', async () => {
    const p = project(
      `${OS}objects:\n  - ../secret.txt\n  - link.txt\n  - ok.txt\nstages: [a]\njobs:\n  - stage: a\n` +
        `    commands: ['ls > list.txt']\n    artifacts: [list.txt]\n`,
      { 'secret.txt': 'secret', 'objs/ok.txt': 'ok' },
    );
    symlinkSync(path.join(p.dir, 'secret.txt'), path.join(p.dir, 'objs', 'link.txt'));
    const r = await run(p, ['-objects', path.join(p.dir, 'objs')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: .djinn.yml:4:5: object error: object "../secret.txt" contains ".."; objects must come from inside the objects folder',
    );
    expect(r.stderr).toMatch(
      /error: \.djinn\.yml:5:5: object error: object "link\.txt" resolves to .*secret\.txt, outside the objects folder/,
    );
    expect(r.stderr).toContain('djinn: 2 objects could not be placed (see above); no job ran');
    expect(r.stdout).not.toContain('==> Running job');
    expect(existsSync(path.join(p.arts, 'list.txt'))).toBe(false);
  });

  it('a missing -objects folder is a usage error', async () => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [echo]}\n`);
    const r = await run(p, ['-objects', path.join(p.dir, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^djinn: -objects: objects folder .*nope does not exist\.\n$/);
  });
});

describe('usage', () => {
  it('-help lists every flag and the commands, exit 0', async () => {
    const r = await runCli(['-help']);
    expect(r.code).toBe(0);
    for (const f of RUN_FLAGS) expect(r.stdout).toContain(`\n  -${f.name}`);
    for (const c of ['lint', 'plan']) expect(r.stdout).toMatch(new RegExp(`\\n  ${c}\\s`));
    expect(r.stdout).toContain('Exit status:');
  });

  it('-version prints the version', async () => {
    const r = await runCli(['-version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`djinn ${VERSION} ${process.platform}/${process.arch}\n`);
  });

  it.each([
    [['-nope'], 'djinn: flag provided but not defined: -nope; see -help for the flags.\n'],
    [['-manifest'], 'djinn: flag needs an argument: -manifest.\n'],
    [['-manifest', 'missing.yml'], 'djinn: missing.yml: manifest: cannot read the manifest: no such file.\n'],
    [['-driver', '/nonexistent/driver.conf'], 'djinn: -driver: driver configuration /nonexistent/driver.conf does not exist.\n'],
  ])('%j exits 2 with one line', async (args, err) => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [echo]}\n`);
    const r = await runCli(args, { cwd: p.dir });
    expect(r.stderr).toBe(err);
    expect(r.code).toBe(2);
  });

  it('a broken driver.conf exits 2 naming its line; unknown keys are warnings', async () => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [echo ok]}\n`, {
      'bad.conf': 'driver qemu {\n  cpus 2x\n}\n',
      'odd.conf': 'driver os {\n  speed 3\n}\n',
    });
    const bad = await runCli(['-driver', 'bad.conf', '-artifacts', p.arts], { cwd: p.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'djinn: bad.conf:2:8: driver qemu cpus: "2x" is not a value: expected a "quoted string", a number, a duration like 60s or a size like 2GB.\n',
    );
    const odd = await runCli(['-driver', 'odd.conf', '-artifacts', p.arts], { cwd: p.dir });
    expect(odd.code).toBe(0);
    expect(odd.stderr).toBe('warning: odd.conf:2:3: unknown key "speed" in driver os is ignored.\n');
  });

  it('a missing default driver.conf is fine for the os driver', async () => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [echo ok]}\n`);
    const r = await runCli(['-artifacts', p.arts], { cwd: p.dir, env: { XDG_CONFIG_HOME: path.join(p.dir, 'no-config') } });
    expect(r.code).toBe(0);
  });

  it('an -artifacts path that is a file is a usage error, not a crash', async () => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [echo]}\n`);
    const r = await runCli(['-driver', '/dev/null', '-artifacts', '.djinn.yml'], { cwd: p.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^djinn: -artifacts: cannot create the artifacts folder .*\.djinn\.yml: EEXIST\.\n$/);
  });

  it('the artifacts folder is created when missing', async () => {
    const p = project(`${OS}stages: [a]\njobs:\n  - {stage: a, commands: [touch f], artifacts: [f]}\n`);
    const r = await run(p);
    expect(r.code).toBe(0);
    expect(statSync(path.join(p.arts, 'f')).isFile()).toBe(true);
  });
});
