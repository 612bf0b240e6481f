// `npm run bench -- ssh [--rounds N] [--raw] [jobs|connect|transfer|stream ...]`: our
// SSH transport (ssh2) against OpenSSH's own client, both talking to the same
// loopback sshd in the same run, sections shuffled per round. Prints medians
// and ratios with the targets of issues 3 and 19, how far each ratio swung
// between rounds (--raw prints every sample), and the whole machine's CPU time
// per transfer. Data lives on /dev/shm so the disk is not what is measured.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobExecution } from '../src/core/job.js';
import { silentReporter } from '../src/core/reporter.js';
import { jobScript } from '../src/runner/script.js';
import { openClient, type SshTarget } from '../src/transport/ssh/connect.js';
import { SshSession } from '../src/transport/ssh/index.js';
import { execCollect } from '../src/transport/ssh/exec.js';
import { startSshd, targetFor, type Sshd } from '../__tests__/helpers/sshd.js';

const MB = 1e6;
const BIG = 256 * 1024 * 1024;
const STREAM = 200_000_000;
const JOBS = 200;
const CONNECTS = 10;
const GCM = 'aes128-gcm@openssh.com';

interface Ctx {
  sshd: Sshd;
  dir: string;
  cfg: string;
  cm: string;
  cmGcm: string;
  /** A target with a fresh connect deadline (a fixed one runs out in a long bench). */
  target: () => SshTarget;
  /** Our connection for transfers, kept across rounds. */
  transfers?: SshSession;
}

type Samples = Record<string, number[]>;
const add = (s: Samples, k: string, v: number): void => {
  (s[k] ??= []).push(v);
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
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

/** Runs a command with stdin/stdout from files; resolves with wall milliseconds. */
function timed(cmd: string, args: string[], io: { stdin?: string; stdout?: string } = {}): Promise<number> {
  const inFd = io.stdin ? openSync(io.stdin, 'r') : 'ignore';
  const outFd = openSync(io.stdout ?? '/dev/null', 'w');
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [inFd, outFd, 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t;
      if (typeof inFd === 'number') closeSync(inFd);
      closeSync(outFd);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`));
      else resolve(ms);
    });
  });
}

/** USER_HZ: /proc/stat counts in these on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/**
 * CPU time the whole machine has spent so far (user, nice, system, irq, softirq), in ms,
 * or NaN where /proc/stat is missing. On a machine whose cores are all busy during a
 * transfer, this (every process's share: ours or OpenSSH's client, sshd, cat) is what
 * bounds the speed, and it swings less between rounds than the wall time does.
 */
function machineCpuMs(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return ((f[0] + f[1] + f[2] + f[5] + f[6]) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** OpenSSH options: our config file, and a ControlMaster socket or none. */
const ssh = (c: Ctx, cm: string | null) => ['-F', c.cfg, '-o', `ControlPath=${cm ?? 'none'}`];

function trueJob(i: number, commands = ['true']): JobExecution {
  return {
    stage: 'bench',
    name: `job ${i}`,
    scriptName: `job-${i}.sh`,
    script: jobScript(commands),
    env: [{ key: 'FOO', value: 'bar baz' }],
  };
}

async function setup(): Promise<Ctx> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const sshd = await startSshd({ base });
  const dir = mkdtempSync(path.join(base, 'djinn-bench-ssh-'));
  const cfg = path.join(dir, 'ssh_config');
  writeFileSync(
    cfg,
    [
      'Host bench',
      '  HostName 127.0.0.1',
      `  Port ${sshd.port}`,
      '  User root',
      `  IdentityFile ${sshd.ed25519KeyFile}`,
      '  IdentitiesOnly yes',
      '  UserKnownHostsFile /dev/null',
      '  StrictHostKeyChecking no',
      '  BatchMode yes',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const c: Ctx = {
    sshd,
    dir,
    cfg,
    cm: path.join(dir, 'cm-default'),
    cmGcm: path.join(dir, 'cm-gcm'),
    target: () => targetFor(sshd),
  };
  // ControlMaster sockets: one with OpenSSH's default cipher, one forced to AES-GCM (its fastest path).
  await timed('ssh', [...ssh(c, c.cm), '-o', 'ControlPersist=600', '-fNM', 'bench']);
  await timed('ssh', [...ssh(c, c.cmGcm), '-o', 'ControlPersist=600', '-c', GCM, '-fNM', 'bench']);
  await timed('sh', ['-c', `head -c ${BIG} /dev/urandom > '${path.join(dir, 'big.bin')}'`]);
  return c;
}

async function teardown(c: Ctx): Promise<void> {
  await c.transfers?.close();
  for (const cm of [c.cm, c.cmGcm]) await timed('ssh', [...ssh(c, cm), '-O', 'exit', 'bench']).catch(() => {});
  await c.sshd.stop();
  rmSync(c.dir, { recursive: true, force: true });
}

async function jobsRound(c: Ctx, s: Samples): Promise<void> {
  const session = await SshSession.connect(c.target());
  const script = path.join(c.dir, 'job.sh');
  writeFileSync(script, trueJob(0).script);
  const ours = async () => {
    const ms = await time(async () => {
      for (let i = 0; i < JOBS; i++) {
        const r = await session.execute(trueJob(i), { write() {} }, new AbortController().signal);
        if (r.exitCode !== 0) throw new Error(`job failed: ${r.error}`);
      }
    });
    add(s, 'job.ours', ms / JOBS);
  };
  const theirs = async () => {
    let total = 0;
    for (let i = 0; i < JOBS; i++)
      total += await timed('ssh', [...ssh(c, c.cm), 'bench', "FOO='bar baz' exec /bin/sh -s"], { stdin: script });
    add(s, 'job.cm', total / JOBS);
  };
  for (const f of shuffle([ours, theirs])) await f();
  await session.close();
}

async function connectRound(c: Ctx, s: Samples): Promise<void> {
  for (let i = 0; i < CONNECTS; i++) {
    const steps: (() => Promise<void>)[] = [
      async () =>
        add(
          s,
          'conn.ours',
          await time(async () => {
            const client = await openClient(c.target());
            await execCollect(client, 'true');
            client.end();
          }),
        ),
      async () =>
        add(
          s,
          'conn.session',
          await time(async () => {
            const session = await SshSession.connect(c.target());
            await session.close();
          }),
        ),
      async () => add(s, 'conn.ssh', await timed('ssh', [...ssh(c, null), 'bench', 'true'])),
    ];
    for (const f of shuffle(steps)) await f();
  }
}

async function transferRound(c: Ctx, s: Samples): Promise<void> {
  // Over a connection open since setup, as OpenSSH's ControlMaster ones are.
  const session = (c.transfers ??= await SshSession.connect(c.target()));
  const big = path.join(c.dir, 'big.bin');
  const down = path.join(c.dir, 'down.bin');
  const put = path.join(c.dir, 'put');
  const get = path.join(c.dir, 'get');
  const rate = (ms: number) => BIG / MB / (ms / 1000);
  const check = (f: string) => {
    if (statSync(f).size !== BIG) throw new Error(`${f}: wrong size after transfer`);
  };
  // Each pair: upload to its own guest file, then download that file.
  const pairs: { name: string; file: string; up: () => Promise<number>; down: () => Promise<number> }[] = [
    {
      name: 'ours',
      file: 'up-ours.bin',
      up: () => time(() => session.upload(big, 'up-ours.bin', 0o600)),
      down: () => time(() => session.download('up-ours.bin', down)),
    },
    {
      name: 'scp',
      file: 'up-scp.bin',
      up: () => timed('scp', [...ssh(c, c.cm), '-q', big, 'bench:up-scp.bin']),
      down: () => timed('scp', [...ssh(c, c.cm), '-q', 'bench:up-scp.bin', down]),
    },
    {
      name: 'sftp',
      file: 'up-sftp.bin',
      up: () => (writeFileSync(put, `put ${big} up-sftp.bin\n`), timed('sftp', [...ssh(c, c.cm), '-q', '-b', put, 'bench'])),
      down: () => (writeFileSync(get, `get up-sftp.bin ${down}\n`), timed('sftp', [...ssh(c, c.cm), '-q', '-b', get, 'bench'])),
    },
    {
      name: 'cat',
      file: 'up-cat.bin',
      up: () => timed('ssh', [...ssh(c, c.cm), 'bench', 'cat > up-cat.bin'], { stdin: big }),
      down: () => timed('ssh', [...ssh(c, c.cm), 'bench', 'cat up-cat.bin'], { stdout: down }),
    },
    {
      name: 'catgcm',
      file: 'up-gcm.bin',
      up: () => timed('ssh', [...ssh(c, c.cmGcm), 'bench', 'cat > up-gcm.bin'], { stdin: big }),
      down: () => timed('ssh', [...ssh(c, c.cmGcm), 'bench', 'cat up-gcm.bin'], { stdout: down }),
    },
  ];
  try {
    // One transfer: its rate, and the machine's CPU time while it ran.
    const sample = async (dir: 'up' | 'down', name: string, transfer: () => Promise<number>) => {
      const cpu = machineCpuMs();
      add(s, `${dir}.${name}`, rate(await transfer()));
      add(s, `${dir}cpu.${name}`, machineCpuMs() - cpu);
    };
    for (const p of shuffle(pairs)) {
      await sample('up', p.name, p.up);
      check(path.join(c.sshd.home, p.file));
      await sample('down', p.name, p.down);
      check(down);
      rmSync(down);
      rmSync(path.join(c.sshd.home, p.file));
    }
  } catch (err) {
    await session.close();
    c.transfers = undefined;
    throw err;
  }
}

interface StreamResult {
  ms: number;
  bytes: number;
  rssBefore: number;
  rssPeak: number;
}

/** Our streaming, measured in a fresh process so that the memory figure is ours alone. */
function streamWorker(c: Ctx): Promise<StreamResult> {
  const index = path.join(path.dirname(fileURLToPath(import.meta.url)), 'index.ts');
  const arg = JSON.stringify({ port: c.sshd.port, key: c.sshd.ed25519KeyFile });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, index, 'ssh', '--stream-worker', arg], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as StreamResult) : reject(new Error(`stream worker exit ${code}`)),
    );
  });
}

async function runStreamWorker(arg: string): Promise<void> {
  const { port, key } = JSON.parse(arg) as { port: number; key: string };
  const session = await SshSession.connect({
    host: '127.0.0.1',
    port,
    user: 'root',
    privateKey: readFileSync(key),
    deadline: Date.now() + 20_000,
    reporter: silentReporter,
  });
  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 10);
  let bytes = 0;
  const ms = await time(() =>
    session.execute(trueJob(0, [`head -c ${STREAM} /dev/zero`]), { write: (ch) => (bytes += ch.length) }, new AbortController().signal),
  );
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  await session.close();
  process.stdout.write(`${JSON.stringify({ ms, bytes, rssBefore, rssPeak })}\n`);
}

/** Peak RSS (VmHWM) of the real CLI (dist/cli.js) running a build whose job prints 200 MB, output to /dev/null. */
async function cliPeakRss(c: Ctx, command = `head -c ${STREAM} /dev/zero`): Promise<number | undefined> {
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
  if (!existsSync(cli)) return undefined;
  const manifest = path.join(c.dir, 'stream.yml');
  const conf = path.join(c.dir, 'driver.conf');
  writeFileSync(
    manifest,
    `driver:\n  type: ssh\n  address: 127.0.0.1:${c.sshd.port}\nstages: [s]\njobs:\n  - stage: s\n    commands:\n      - ${command}\n`,
  );
  writeFileSync(conf, `driver ssh {\n  key "${c.sshd.ed25519KeyFile}"\n}\n`);
  const out = openSync('/dev/null', 'w');
  const child = spawn(
    process.execPath,
    [cli, '-manifest', manifest, '-driver', conf, '-artifacts', path.join(c.dir, 'art'), '-objects', c.dir],
    { stdio: ['ignore', out, 'inherit'] },
  );
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {}
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(poll);
  closeSync(out);
  if (code !== 0) throw new Error(`dist/cli.js streaming build failed with exit ${code}`);
  return peak / MB;
}

async function streamRound(c: Ctx, s: Samples): Promise<void> {
  const rate = (ms: number) => STREAM / MB / (ms / 1000);
  const cmd = `head -c ${STREAM} /dev/zero`;
  const steps: (() => Promise<void>)[] = [
    async () => {
      const w = await streamWorker(c);
      if (w.bytes < STREAM) throw new Error('stream: short output');
      add(s, 'stream.ours', rate(w.ms));
      add(s, 'stream.rssPeak', w.rssPeak / MB);
      add(s, 'stream.rssGrowth', (w.rssPeak - w.rssBefore) / MB);
    },
    async () => add(s, 'stream.ssh', rate(await timed('ssh', [...ssh(c, null), 'bench', cmd]))),
    async () => add(s, 'stream.sshgcm', rate(await timed('ssh', [...ssh(c, null), '-c', GCM, 'bench', cmd]))),
    async () => add(s, 'stream.cm', rate(await timed('ssh', [...ssh(c, c.cm), 'bench', cmd]))),
    async () => {
      const peak = await cliPeakRss(c);
      if (peak !== undefined) add(s, 'stream.cliPeak', peak);
      const idle = await cliPeakRss(c, 'echo quiet');
      if (idle !== undefined) add(s, 'stream.cliIdle', idle);
    },
  ];
  for (const f of shuffle(steps)) await f();
}

function report(s: Samples, rounds: number): void {
  const m = (k: string) => median(s[k] ?? []);
  const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  const rows: string[][] = [];
  // 'lower': times, a smaller ratio is better; 'higher': rates, a larger ratio is better.
  const row = (what: string, ours: string, base: string, unit: string, target: string, kind: 'lower' | 'higher', limit: number) => {
    if (!s[ours] || !s[base]) return;
    const r = m(ours) / m(base);
    const met = target === '(info)' ? '' : (kind === 'lower' ? r <= limit : r >= limit) ? 'yes' : 'NO';
    // The same round's pair: how far the ratio swings between rounds on this machine.
    const perRound = s[ours].slice(0, s[base].length).map((v, i) => v / s[base][i]);
    const spread = perRound.length > 1 ? `${f(Math.min(...perRound), 2)}-${f(Math.max(...perRound), 2)}x` : '';
    rows.push([what, `${f(m(ours))} ${unit}`, `${f(m(base))} ${unit}`, `${f(r, 2)}x`, spread, target, met]);
  };
  row('per job, Djinn flow, 200 jobs (vs ssh over ControlMaster)', 'job.ours', 'job.cm', 'ms', '<= 0.8x', 'lower', 0.8);
  row('connect + auth + exec true (vs `ssh host true`)', 'conn.ours', 'conn.ssh', 'ms', '<= 0.5x', 'lower', 0.5);
  row('  SshSession.connect + close', 'conn.session', 'conn.ssh', 'ms', '(info)', 'lower', 0);
  for (const dir of ['up', 'down']) {
    row(`${dir}load 256 MiB (vs scp, CM)`, `${dir}.ours`, `${dir}.scp`, 'MB/s', '>= 1.0x', 'higher', 1.0);
    row(`${dir}load 256 MiB (vs sftp, CM)`, `${dir}.ours`, `${dir}.sftp`, 'MB/s', '>= 1.0x', 'higher', 1.0);
    row(`${dir}load 256 MiB (vs ssh cat, -c aes128-gcm, CM)`, `${dir}.ours`, `${dir}.catgcm`, 'MB/s', '>= 0.75x', 'higher', 0.75);
    row(`${dir}load 256 MiB (vs ssh cat, default cipher, CM)`, `${dir}.ours`, `${dir}.cat`, 'MB/s', '(info)', 'higher', 0);
  }
  // All processes on the machine, both ends: lower is better. Not a target of the issues.
  const cpuBaselines = [
    ['scp', 'scp'],
    ['sftp', 'sftp'],
    ['catgcm', 'ssh cat, -c aes128-gcm'],
  ];
  if (Number.isFinite(m('upcpu.ours')))
    for (const dir of ['up', 'down'])
      for (const [base, label] of cpuBaselines)
        row(`${dir}load, machine CPU per 256 MiB (vs ${label})`, `${dir}cpu.ours`, `${dir}cpu.${base}`, 'ms', '(info)', 'lower', 0);
  // Both come over our connection, in the same direction: what the file pipeline costs.
  row('download 256 MiB (vs our own 200 MB stdout stream)', 'down.ours', 'stream.ours', 'MB/s', '>= 0.8x', 'higher', 0.8);
  row('200 MB stdout (vs `ssh host cmd > /dev/null`)', 'stream.ours', 'stream.ssh', 'MB/s', '>= 1.0x', 'higher', 1.0);
  row('200 MB stdout (vs same with -c aes128-gcm)', 'stream.ours', 'stream.sshgcm', 'MB/s', '(info)', 'higher', 0);
  row('200 MB stdout (vs ssh over ControlMaster)', 'stream.ours', 'stream.cm', 'MB/s', '(info)', 'higher', 0);
  const head = ['measure', 'djinn (ssh2)', 'OpenSSH', 'ratio', 'per round', 'target', 'met'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\nmedians over ${rounds} interleaved round(s)`);
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  if (s['stream.rssPeak']) {
    console.log(
      `\nstreaming 200 MB in a worker run through tsx: peak RSS ${f(m('stream.rssPeak'))} MB, of which ` +
        `${f(m('stream.rssGrowth'))} MB grew while streaming (tsx's loader accounts for the rest)`,
    );
  }
  if (s['stream.cliPeak']) {
    const peak = m('stream.cliPeak');
    console.log(
      `streaming 200 MB through the real CLI (node dist/cli.js, ssh driver): peak RSS ${f(peak)} MB ` +
        `(${f(m('stream.cliIdle'))} MB for the same build printing nothing); target <= 100 MB: ` +
        `${peak <= 100 ? 'yes' : 'NO'}`,
    );
  } else if (s['stream.rssPeak']) console.log("(build dist/ with npm run build to measure the CLI's own peak memory)");
}

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--stream-worker') return runStreamWorker(args[1]);
  const ri = args.indexOf('--rounds');
  const rounds = ri >= 0 ? Math.max(1, Number(args[ri + 1]) || 1) : 3;
  const only = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--rounds');
  const require = createRequire(import.meta.url);
  const binding = (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean }).bindingAvailable;
  const from = process.env.DJINN_SSH2_BINDING;
  console.log(
    `ssh2 native crypto binding: ${
      binding
        ? `loaded (${from ? `DJINN_SSH2_BINDING=${from}` : "ssh2's own build"}), here and in dist/cli.js`
        : 'not loaded: pure JS + Node crypto (set DJINN_SSH2_BINDING to a built sshcrypto.node to measure with it)'
    }`,
  );
  console.log(
    `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, Node ${process.version}`,
  );
  const c = await setup();
  const s: Samples = {};
  const sections: [string, (c: Ctx, s: Samples) => Promise<void>][] = [
    ['jobs', jobsRound],
    ['connect', connectRound],
    ['transfer', transferRound],
    ['stream', streamRound],
  ];
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const [name, fn] of shuffle(sections)) {
        if (only.length && !only.includes(name)) continue;
        process.stderr.write(`round ${r}/${rounds}: ${name}...\n`);
        await fn(c, s);
      }
    }
  } finally {
    await teardown(c);
  }
  if (args.includes('--raw')) for (const [k, v] of Object.entries(s)) console.log(`${k}: ${v.map((x) => x.toFixed(1)).join(' ')}`);
  report(s, rounds);
}
