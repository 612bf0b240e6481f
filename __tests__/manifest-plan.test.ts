// `plan --json` on real-world manifests (written in the style of Djinn's own,
// imgsrv's, mgrt's, the docs', the image bootstrap manifests and the
// tutorial), checked against the shape the plan promises.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './helpers/cli.js';

const FIX = path.join(ROOT, '__tests__', 'fixtures', 'manifests');

interface JsonPlan {
  manifest: string;
  driver: Record<string, string>;
  env: string[];
  objects: { src: string; dst: string }[];
  stages: {
    name: string;
    allowFailures: boolean;
    jobs: { name: string; commands: string[]; artifacts: { src: string; dst: string }[]; line?: number }[];
  }[];
  warnings: { line: number; column: number; message: string }[];
}

async function plan(file: string, ...extra: string[]): Promise<JsonPlan> {
  const r = await runCli(['plan', '-manifest', file, '--json', ...extra], { cwd: FIX });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as JsonPlan;
}

/** The promised shape, without the extra keys (manifest, line). */
function shape(p: JsonPlan): unknown {
  return {
    driver: p.driver,
    env: p.env,
    objects: p.objects,
    stages: p.stages.map((s) => ({
      name: s.name,
      allowFailures: s.allowFailures,
      jobs: s.jobs.map(({ name, commands, artifacts }) => ({ name, commands, artifacts })),
    })),
    warnings: p.warnings,
  };
}

const job = (name: string, commands: string[], artifacts: [string, string][] = []) => ({
  name,
  commands,
  artifacts: artifacts.map(([src, dst]) => ({ src, dst })),
});

describe('plan --json', () => {
  it('the tutorial: one stage, artifact named after its basename, no setup stage', async () => {
    expect(shape(await plan('tutorial.yml'))).toEqual({
      driver: { type: 'qemu', image: 'debian/stable', arch: 'x86_64' },
      env: [],
      objects: [],
      stages: [{ name: 'os', allowFailures: false, jobs: [job('os.1', ['cat /etc/os-release'], [['/etc/os-release', 'os-release']])] }],
      warnings: [],
    });
  });

  it('mgrt: an scp-style source, allow_failures, renamed artifact', async () => {
    expect(shape(await plan('mgrt.yml'))).toEqual({
      driver: { type: 'qemu', image: 'debian/stable', arch: 'x86_64' },
      env: [],
      objects: [],
      stages: [
        {
          name: 'setup',
          allowFailures: false,
          jobs: [job('clone.1', ['mkdir -p mgrt', 'git clone git@github.com:andrewpillar/mgrt.git mgrt'])],
        },
        { name: 'deps', allowFailures: false, jobs: [job('deps.1', ['apt-get install -y golang sqlite3'])] },
        { name: 'test', allowFailures: true, jobs: [job('test.1', ['cd mgrt', 'go test -cover ./...'])] },
        { name: 'make', allowFailures: false, jobs: [job('make.1', ['cd mgrt', './make.sh'], [['mgrt/bin/mgrt', 'mgrt']])] },
        {
          name: 'make-sqlite3',
          allowFailures: false,
          jobs: [job('make-sqlite3.1', ['cd mgrt', 'TAGS="sqlite3" ./make.sh'], [['mgrt/bin/mgrt', 'mgrt-sqlite3']])],
        },
      ],
      warnings: [],
    });
  });

  it('imgsrv: three sources cloned in order, named jobs, env kept verbatim', async () => {
    const p = await plan('imgsrv.yml');
    expect(shape(p)).toEqual({
      driver: { type: 'qemu', image: 'debian/stable', arch: 'x86_64' },
      env: ['GOVERSION=1.18'],
      objects: [],
      stages: [
        {
          name: 'setup',
          allowFailures: false,
          jobs: [
            job('clone.1', ['mkdir -p imgsrv', 'git clone https://github.com/djinn-ci/imgsrv.git imgsrv']),
            job('clone.2', ['mkdir -p tools', 'git clone https://github.com/golang/tools tools']),
            job('clone.3', ['mkdir -p quicktemplate', 'git clone https://github.com/valyala/quicktemplate quicktemplate']),
          ],
        },
        {
          name: 'deps',
          allowFailures: false,
          jobs: [
            job('go', [
              'wget -q https://golang.org/dl/go${GOVERSION}.linux-amd64.tar.gz',
              'tar -C /usr/local -xzf go${GOVERSION}.linux-amd64.tar.gz',
              'ln -sf /usr/local/go/bin/go /usr/bin/go',
            ]),
            job('stringer', ['cd ~/tools/cmd/stringer', 'go build -o /usr/local/bin/stringer']),
            job('qtc', ['cd ~/quicktemplate/qtc', 'go build -o /usr/local/bin/qtc']),
          ],
        },
        {
          name: 'make',
          allowFailures: false,
          jobs: [job('make.1', ['cd ~/imgsrv', './make.sh'], [['imgsrv/bin/djinn-imgsrv', 'djinn-imgsrv']])],
        },
      ],
      warnings: [],
    });
    // Extra keys: where each job is defined.
    expect(p.stages[1].jobs.map((j) => j.line)).toEqual([14, 20, 25]);
    expect(p.manifest).toBe('imgsrv.yml');
  });

  it('image bootstrap: objects with default destinations, artifact into a subfolder', async () => {
    expect(shape(await plan('bootstrap-debian-11.yml'))).toEqual({
      driver: { type: 'qemu', image: 'debian/stable', arch: 'x86_64' },
      env: ['CODENAME=stable', 'DEBIAN_FRONTEND=noninteractive'],
      objects: [
        { src: 'bootstrap-debian.sh', dst: 'bootstrap-debian.sh' },
        { src: 'util.sh', dst: 'util.sh' },
      ],
      stages: [
        {
          name: 'bootstrap',
          allowFailures: false,
          jobs: [
            job(
              'bootstrap.1',
              ['apt-get update', 'apt-get install -y debootstrap qemu-utils', './bootstrap-debian.sh'],
              [['debian', 'debian/11']],
            ),
          ],
        },
      ],
      warnings: [],
    });
  });

  it("Djinn's own: a source with a ref checks it out; a user stage named setup runs after the clones", async () => {
    const r = await runCli(['plan', '-manifest', 'djinn.yml', '--json'], { cwd: FIX });
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout) as JsonPlan;
    expect(p.driver).toEqual({ type: 'qemu', image: 'djinn-dev', arch: 'x86_64' });
    expect(p.env).toEqual([
      'LDFLAGS=-s -w',
      'INTEGRATION_CONFIG_DIR=testdata',
      'PGDSN=host=localhost port=5432 dbname=djinn user=djinn password=secret sslmode=disable',
    ]);
    expect(p.stages.map((s) => s.name)).toEqual(['setup', 'deps', 'setup', 'make']);
    expect(p.stages[0].jobs).toEqual([
      { name: 'clone.1', commands: ['mkdir -p djinn', 'git clone https://github.com/djinn-ci/djinn.git djinn'], artifacts: [], line: 11 },
      {
        name: 'clone.2',
        commands: ['mkdir -p mgrt', 'git clone https://github.com/andrewpillar/mgrt mgrt', 'cd mgrt', 'git checkout -q v3'],
        artifacts: [],
        line: 12,
      },
    ]);
    expect(p.stages[3].jobs[0].artifacts.map((a) => a.dst)).toEqual([
      'make.log',
      'test.log',
      'vet.log',
      'djinn',
      'djinn-consumer',
      'djinn-curator',
      'djinn-scheduler',
      'djinn-server',
      'djinn-worker',
      'sum.manif',
    ]);
    // The namespace note is a warning, in the JSON too.
    expect(p.warnings).toEqual([
      { line: 2, column: 1, message: 'namespace "djinn" is only used by a Djinn server; it is ignored when running here.' },
    ]);
  });

  it('docs: arch x86_64 given explicitly is kept without a warning', async () => {
    const r = await runCli(['plan', '-manifest', 'docs.yml', '--json'], { cwd: FIX });
    const p = JSON.parse(r.stdout) as JsonPlan;
    expect(p.driver).toEqual({ type: 'qemu', image: 'arch', arch: 'x86_64' });
    expect(p.stages.map((s) => s.name)).toEqual(['setup', 'deps', 'lint', 'build']);
    expect(p.stages[3].jobs[0].artifacts).toEqual([
      { src: 'docs/build/dirhtml/docs.djinn-ci.com.tar.gz', dst: 'docs.djinn-ci.com.tar.gz' },
    ]);
  });
});

describe('plan -stage', () => {
  it('keeps the setup stage and the chosen stage', async () => {
    const p = await plan('imgsrv.yml', '-stage', 'make');
    expect(p.stages.map((s) => s.name)).toEqual(['setup', 'make']);
  });

  it('without sources there is no setup stage to keep', async () => {
    const p = await plan('bootstrap-debian-11.yml', '-stage', 'bootstrap');
    expect(p.stages.map((s) => s.name)).toEqual(['bootstrap']);
  });

  it('a user stage named setup is kept with the clones when chosen', async () => {
    const r = await runCli(['plan', '-manifest', 'djinn.yml', '--json', '-stage', 'setup'], { cwd: FIX });
    const p = JSON.parse(r.stdout) as JsonPlan;
    expect(p.stages.map((s) => [s.name, s.jobs.map((j) => j.name)])).toEqual([
      ['setup', ['clone.1', 'clone.2']],
      ['setup', ['setup.1']],
    ]);
  });

  it('an unknown stage is an error listing the stages, exit 2', async () => {
    const r = await runCli(['plan', '-manifest', 'mgrt.yml', '--json', '-stage', 'release'], { cwd: FIX });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'djinn: mgrt.yml: -stage: unknown stage "release"; the manifest\'s stages are: deps, test, make, make-sqlite3.\n',
    );
  });
});

describe('plan (text) and lint', () => {
  it('prints the stages, jobs and commands readably', async () => {
    const r = await runCli(['plan', '-manifest', 'mgrt.yml'], { cwd: FIX });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('stage test (failures allowed)\n  job test.1\n    $ cd mgrt\n    $ go test -cover ./...\n');
    expect(r.stdout).toContain('    artifact mgrt/bin/mgrt => mgrt-sqlite3\n');
  });

  it('lint passes on every fixture', async () => {
    const files = ['tutorial.yml', 'mgrt.yml', 'imgsrv.yml', 'bootstrap-debian-11.yml', 'djinn.yml', 'docs.yml'];
    const r = await runCli(['lint', ...files], { cwd: FIX });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(files.length);
  });
});
