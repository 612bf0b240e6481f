// `npm run bench -- docker [--rounds N]`: the docker driver against the docker
// CLI on the same engine in the same run, sections shuffled per round:
//   job       one job (`true`) through DockerDriver.execute vs `docker run --rm` with the same volume mount
//   download  a 64 MB artifact through DockerDriver.download vs `docker cp`, and
//             the same archive through dockerode (the driver's fallback) for reference
// Prints medians and our/CLI ratios. Uses DOCKER_HOST, or starts a private
// dockerd (scripts/dockerd.sh) as the tests do.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestEngine, stopTestEngine } from '../__tests__/helpers/docker.js';
import { DockerDriver } from '../src/drivers/docker/docker-driver.js';
import { extractFirst } from '../src/drivers/docker/tar.js';
import { testSettings } from '../__tests__/helpers/settings.js';
import { silentReporter } from '../src/core/reporter.js';
import { jobScript } from '../src/runner/script.js';

const WORKSPACE = '/w';
const BIG_MB = 64;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function docker(host: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('docker', ['-H', host, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

export async function run(args: string[]): Promise<void> {
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 7;
  const engine = await startTestEngine();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-bench-docker-'));
  const driver = new DockerDriver(
    { type: 'docker', options: { image: engine.image, workspace: WORKSPACE }, position: {} },
    testSettings(tmp, { docker: { host: engine.host } }),
  );
  const stop = new AbortController();
  try {
    await driver.create({ reporter: silentReporter, env: [], signal: stop.signal });
    const volume = String(driver.facts().volume);
    const files = `${volume}-files`;
    const sink = { write() {} };
    const job = { stage: 'b', name: 'b.1', scriptName: 'b.1.sh', script: jobScript(['true']), env: [] };
    const made = await driver.execute({ ...job, script: jobScript([`head -c ${BIG_MB}M /dev/urandom > big`]) }, sink, stop.signal);
    if (made.exitCode !== 0) throw new Error('could not make the test file');

    const samples: Record<string, number[]> = {};
    const add = (k: string, v: number): void => {
      (samples[k] ??= []).push(v);
    };
    const sections: Record<string, () => Promise<void>> = {
      'job: driver': async () => add('job: driver', await time(() => driver.execute(job, sink, stop.signal))),
      'job: docker run --rm': async () =>
        add(
          'job: docker run --rm',
          await time(() =>
            docker(engine.host, ['run', '--rm', '-v', `${volume}:${WORKSPACE}`, '-w', WORKSPACE, engine.image, '/bin/sh', '-c', 'true']),
          ),
        ),
      'download: driver': async () => {
        const out = path.join(tmp, 'a.bin');
        add('download: driver', await time(() => driver.download('big', out)));
        if (statSync(out).size !== BIG_MB * 1024 * 1024) throw new Error('short download');
        rmSync(out);
      },
      'download: dockerode': async () => {
        const out = path.join(tmp, 'c.bin');
        const viaDockerode = async () =>
          extractFirst(await engine.docker.getContainer(files).getArchive({ path: `${WORKSPACE}/big` }), out);
        add('download: dockerode', await time(viaDockerode));
        if (statSync(out).size !== BIG_MB * 1024 * 1024) throw new Error('short download');
        rmSync(out);
      },
      'download: docker cp': async () => {
        const out = path.join(tmp, 'b.bin');
        add('download: docker cp', await time(() => docker(engine.host, ['cp', `${files}:${WORKSPACE}/big`, out])));
        rmSync(out);
      },
    };
    for (let r = 0; r < rounds; r++) for (const name of shuffle(Object.keys(sections))) await sections[name]();

    const m = (k: string) => median(samples[k]);
    const rows = [
      ['job (true)', m('job: driver'), m('job: docker run --rm')],
      [`download ${BIG_MB} MB`, m('download: driver'), m('download: docker cp')],
      ['  (via dockerode)', m('download: dockerode'), m('download: docker cp')],
    ] as const;
    process.stdout.write(`docker driver vs docker CLI, same engine, ${rounds} rounds, medians\n`);
    process.stdout.write(`${'what'.padEnd(18)}${'driver ms'.padStart(11)}${'CLI ms'.padStart(10)}${'ratio'.padStart(8)}\n`);
    for (const [what, ours, cli] of rows) {
      process.stdout.write(
        `${what.padEnd(18)}${ours.toFixed(0).padStart(11)}${cli.toFixed(0).padStart(10)}${(ours / cli).toFixed(2).padStart(8)}\n`,
      );
    }
  } finally {
    await driver.destroy();
    rmSync(tmp, { recursive: true, force: true });
    await stopTestEngine(engine);
  }
}
