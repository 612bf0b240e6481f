// The SSH transport against a real OpenSSH sshd on loopback (see helpers/sshd.ts).
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobExecution } from '../src/core/job.js';
import type { Reporter } from '../src/core/reporter.js';
import { jobScript } from '../src/runner/script.js';
import { shellQuote } from '../src/core/shell.js';
import { SshSession, waitForBanner } from '../src/transport/ssh/index.js';
import { freePort, startSshd, targetFor, type Sshd } from './helpers/sshd.js';

function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    jobStart() {},
    jobOutput() {},
    jobEnd() {},
    buildEnd() {},
  };
}

function job(name: string, commands: string[], env: { key: string; value: string }[] = []): JobExecution {
  return { stage: 'test', name, scriptName: `${name}.sh`, script: jobScript(commands), env };
}

async function run(s: SshSession, j: JobExecution, signal = new AbortController().signal) {
  const chunks: Buffer[] = [];
  const r = await s.execute(j, { write: (c) => chunks.push(c) }, signal);
  return { ...r, output: Buffer.concat(chunks).toString() };
}

let sshd: Sshd;
let tmp: string;
const sessions: SshSession[] = [];

async function connect(opts: Partial<Parameters<typeof SshSession.connect>[0]> = {}) {
  const s = await SshSession.connect(targetFor(sshd, { reporter: recorder(), ...opts }));
  sessions.push(s);
  return s;
}

beforeAll(async () => {
  sshd = await startSshd();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'djinn-ssh-test-'));
});

afterAll(async () => {
  for (const s of sessions) await s.close();
  await sshd?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('login', () => {
  it('logs in with an ed25519 key in OpenSSH format and prints the host key fingerprint once', async () => {
    const rep = recorder();
    const s = await connect({ reporter: rep });
    expect(rep.lines.filter((l) => l.includes('SHA256:'))).toHaveLength(1);
    expect(rep.lines.join('\n')).toMatch(/ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
    expect(rep.lines).toContain('Established SSH connection to machine as root...');
    const r = await run(s, job('hello', ['echo hello from $(whoami)']));
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('hello from root');
  });

  it('logs in with an RSA key in PEM format, and with PKCS#8 keys converted for ssh2', async () => {
    const s = await connect({ privateKey: sshd.rsaPemKey });
    expect((await s.exec('echo ok')).stdout.toString()).toBe('ok\n');
    // PKCS#8 RSA from this machine's key, and a fresh PKCS#8 ed25519 key authorised now.
    const rsa8 = createPrivateKey(sshd.rsaPemKey).export({ type: 'pkcs8', format: 'pem' }).toString();
    const ed = generateKeyPairSync('ed25519');
    const ed8 = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const raw = Buffer.from(ed.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const sshString = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
    appendFileSync(path.join(sshd.dir, 'authorized_keys'), `ssh-ed25519 ${blob.toString('base64')} pkcs8\n`);
    for (const pkcs8 of [rsa8, ed8]) {
      expect(pkcs8).toContain('BEGIN PRIVATE KEY');
      const s2 = await connect({ privateKey: pkcs8 });
      expect((await s2.exec('echo ok')).code).toBe(0);
    }
  });

  it('refuses a key the server does not know with a clear message, without retrying until the deadline', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const err = await connect({ privateKey: other, deadline: Date.now() + 600_000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /SSH login as root to 127\.0\.0\.1:\d+ was refused; tried key, none \(the server offers: publickey\)\./,
    );
  });

  it('with retryRefusedLogin, keeps trying a refused key until it is authorised (a VM still writing its keys)', async () => {
    const late = generateKeyPairSync('ed25519');
    const raw = Buffer.from(late.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const sshString = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
    const rep = recorder();
    const pending = connect({
      privateKey: late.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      retryRefusedLogin: true,
      reporter: rep,
    });
    const timer = setTimeout(
      () => appendFileSync(path.join(sshd.dir, 'authorized_keys'), `ssh-ed25519 ${blob.toString('base64')} late\n`),
      2500,
    );
    try {
      const s = await pending;
      expect((await s.exec('echo in')).stdout.toString()).toBe('in\n');
    } finally {
      clearTimeout(timer);
    }
  });

  it('rejects a garbage key file before connecting', async () => {
    const err = await connect({ privateKey: 'not a key' }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^cannot use the SSH private key: /);
  });

  it('logs in as root with an empty password when the server allows it', async () => {
    const open = await startSshd({ emptyPassword: true, keys: false });
    try {
      const s = await SshSession.connect({
        host: open.host,
        port: open.port,
        user: 'root',
        password: '',
        deadline: Date.now() + 20_000,
        reporter: recorder(),
      });
      try {
        expect((await s.exec('id -u')).stdout.toString()).toBe('0\n');
      } finally {
        await s.close();
      }
    } finally {
      await open.stop();
    }
  });
});

describe('waiting for the server', () => {
  it('gives up at the deadline on a port where nothing listens', async () => {
    const port = await freePort();
    await expect(waitForBanner('127.0.0.1', port, Date.now() + 1200)).rejects.toThrow(
      /Timed out trying to connect to 127\.0\.0\.1:\d+ .*connection refused/,
    );
  });

  it('keeps probing a port that accepts TCP but sends no banner (as QEMU does before the guest is up), then connects', async () => {
    // A server that accepts and stays silent, like QEMU's forward while the guest boots, then starts talking SSH.
    const port = await freePort();
    const silent = net.createServer((c) => c.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
    const rep = recorder();
    const waiting = SshSession.connect({
      host: '127.0.0.1',
      port,
      user: 'root',
      privateKey: sshd.ed25519Key,
      deadline: Date.now() + 30_000,
      reporter: rep,
    });
    let relayServer: net.Server | undefined;
    // Relay to the real sshd after a while: the session must come up on its own.
    setTimeout(() => {
      silent.close();
      const relay = net.createServer((c) => {
        const up = net.connect({ host: sshd.host, port: sshd.port });
        c.pipe(up).pipe(c);
        c.on('error', () => up.destroy());
        up.on('error', () => c.destroy());
      });
      relay.listen(port, '127.0.0.1');
      relayServer = relay;
    }, 6500);
    try {
      const s = await waiting;
      sessions.push(s);
      expect((await s.exec('echo up')).stdout.toString()).toBe('up\n');
      const waits = rep.lines.filter((l) => l.startsWith('Waiting for SSH'));
      // Logged, but not on every probe (probes happen every ~1.5 s).
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits.length).toBeLessThanOrEqual(2);
      expect(waits[0]).toMatch(/no SSH banner yet/);
    } finally {
      relayServer?.close();
      silent.close();
    }
  }, 40_000);

  it('gets the banner of a server slower to send it than a quick probe waits (a slow guest sshd; quick probes alone never see it)', async () => {
    // Every connection gets its banner 2.5 s after the accept, as a guest sshd under
    // emulation on a loaded host may: longer than one quick probe waits (1.5 s).
    const port = await freePort();
    let accepted = 0;
    const slow = net.createServer((c) => {
      accepted++;
      c.on('error', () => {});
      const t = setTimeout(() => c.writable && c.write('SSH-2.0-SlowServer\r\n'), 2500);
      c.on('close', () => clearTimeout(t));
    });
    await new Promise<void>((r) => slow.listen(port, '127.0.0.1', r));
    try {
      await expect(waitForBanner('127.0.0.1', port, Date.now() + 30_000)).resolves.toBeUndefined();
      expect(accepted).toBeGreaterThanOrEqual(2);
    } finally {
      slow.close();
    }
  }, 40_000);
});

describe('jobs', () => {
  let s: SshSession;
  beforeAll(async () => {
    s = await connect();
  });

  it('reports exit statuses', async () => {
    expect((await run(s, job('ok', ['true']))).exitCode).toBe(0);
    expect((await run(s, job('three', ['exit 3']))).exitCode).toBe(3);
    const failed = await run(s, job('fails', ['echo before', 'false', 'echo after']));
    expect(failed.exitCode).toBe(1);
    expect(failed.output).toContain('before');
    expect(failed.output).not.toContain('+ echo after');
  });

  it('runs small scripts from the command line and big ones (over 16 KiB, quotes and all) from stdin, byte for byte', async () => {
    for (const size of [100, 200_000]) {
      const body = `it's "${'x'.repeat(size)}" \\ $HOME`;
      const r = await run(
        s,
        job(`size${size}`, [`printf '%s' ${shellQuote(body)} | wc -c`, `printf '%s' ${shellQuote(body)} | sha256sum`]),
      );
      expect(r.exitCode).toBe(0);
      expect(r.output).toContain(`\n${Buffer.byteLength(body)}\n`);
      expect(r.output).toContain(createHash('sha256').update(body).digest('hex'));
    }
  });

  it('never loses an exit status, even when the whole job fits in one packet burst (300 quick jobs)', async () => {
    // Regression: listeners attached after an await missed ssh2's same-tick exit event.
    const codes: (number | null)[] = [];
    for (let i = 0; i < 300; i++) codes.push((await run(s, job(`quick${i}`, [`exit ${i % 3}`]))).exitCode);
    expect(codes).toEqual(codes.map((_, i) => i % 3));
    for (let i = 0; i < 100; i++) expect((await s.exec(`exit ${i % 4}`)).code).toBe(i % 4);
  });

  it('delivers awkward env values byte for byte with no AcceptEnv on the server, and no host variables', async () => {
    process.env.DJINN_HOST_SECRET = 'must-not-leak';
    const env = [
      { key: 'SPACES', value: '  a  b  ' },
      { key: 'QUOTES', value: `it's "quoted"` },
      { key: 'DOLLAR', value: '$HOME ${PATH} $(id) `id`' },
      { key: 'BACKSLASH', value: 'a\\b\\\\c\\n' },
      { key: 'NEWLINES', value: 'line1\nline2\n\nline4\n' },
      { key: 'EMPTY', value: '' },
      { key: 'UTF8', value: 'héllo wörld ✓' },
    ];
    const r = await run(
      s,
      job(
        'env',
        [
          'for k in SPACES QUOTES DOLLAR BACKSLASH NEWLINES EMPTY UTF8; do eval "printf \'%s=[%s]\\n\' $k \\"\\$$k\\""; done',
          'echo "secret=[${DJINN_HOST_SECRET-unset}]"',
        ],
        env,
      ),
    );
    delete process.env.DJINN_HOST_SECRET;
    expect(r.exitCode).toBe(0);
    for (const e of env) expect(r.output).toContain(`${e.key}=[${e.value}]\n`);
    expect(r.output).toContain('secret=[unset]');
  });

  it('runs each job in the home folder and keeps its script out of it', async () => {
    const r = await run(s, job('where', ['pwd', 'ls -a']));
    expect(r.output).toContain(`\n/root\n`);
    expect(r.output).not.toContain('where.sh');
    expect(existsSync(path.join(sshd.home, 'where.sh'))).toBe(false);
  });

  it('streams output live: lines printed with pauses arrive before the job ends', async () => {
    const seen: { text: string; at: number }[] = [];
    const p = s.execute(
      job('slow', ['echo one', 'sleep 1', 'echo two', 'sleep 1', 'echo three']),
      { write: (c) => seen.push({ text: c.toString(), at: Date.now() }) },
      new AbortController().signal,
    );
    const r = await p;
    const ended = Date.now();
    expect(r.exitCode).toBe(0);
    const all = seen.map((c) => c.text).join('');
    expect(all.indexOf('one')).toBeLessThan(all.indexOf('two'));
    expect(all.indexOf('two')).toBeLessThan(all.indexOf('three'));
    // "one" came in a chunk of its own, before "two" existed: that is streaming, not buffering.
    const first = seen.findIndex((c) => c.text.includes('one'));
    const second = seen.findIndex((c) => c.text.includes('two'));
    expect(second).toBeGreaterThan(first);
    expect(seen[first].text).not.toContain('two');
    expect(ended).toBeGreaterThanOrEqual(seen[first].at);
  });

  it('exec passes stdin through (e.g. a tar stream) and returns the output', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 'x');
    const r = await s.exec('wc -c', { stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]) });
    expect(r.code).toBe(0);
    expect(r.stdout.toString().trim()).toBe(String(data.length));
    expect((await s.exec('exit 4')).code).toBe(4);
  });

  it('exec survives a command that exits before reading all its stdin', async () => {
    function* lots() {
      for (let i = 0; i < 400; i++) yield Buffer.alloc(256 * 1024, 1);
    }
    const r = await s.exec('head -c 10 >/dev/null; echo bye >&2; exit 3', { stdin: Readable.from(lots()) });
    expect(r.code).toBe(3);
    expect(r.stderr.toString()).toBe('bye\n');
    expect((await s.exec('echo alive')).stdout.toString()).toBe('alive\n');
  });

  it('exec with a signal stops the remote command on abort', async () => {
    const stop = new AbortController();
    const p = s.exec('echo $$ > exec-abort.pid; exec sleep 308', { signal: stop.signal });
    const pidFile = path.join(sshd.home, 'exec-abort.pid');
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    stop.abort();
    const r = await p;
    expect(r.code).toBeNull();
    let alive = true;
    for (let i = 0; i < 40 && alive; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((res) => setTimeout(res, 100));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
    expect((await s.exec('echo alive')).stdout.toString()).toBe('alive\n');
  });
});

describe('files', () => {
  let s: SshSession;
  beforeAll(async () => {
    s = await connect();
  });

  it('places objects with mode 0700, relative to home, creating parent folders, truncating an old file', async () => {
    const src = path.join(tmp, 'obj.txt');
    writeFileSync(src, 'object body\n');
    writeFileSync(path.join(sshd.home, 'existing.txt'), 'a much longer previous content\n', { mode: 0o644 });
    await s.upload(src, 'deep/er/obj.txt', 0o700);
    await s.upload(src, 'existing.txt', 0o700);
    await s.upload(src, `${sshd.home.replace(sshd.home, '/root')}/abs.txt`, 0o700);
    for (const f of ['deep/er/obj.txt', 'existing.txt', 'abs.txt']) {
      const p = path.join(sshd.home, f);
      expect(readFileSync(p, 'utf8')).toBe('object body\n');
      expect(statSync(p).mode & 0o777).toBe(0o700);
    }
  });

  it('copies big files (from 8 MiB) through cat: exact bytes both ways, parents made, old file truncated, mode set', async () => {
    const src = path.join(tmp, 'big-object.bin');
    const body = randomBytes(9 << 20);
    writeFileSync(src, body);
    writeFileSync(path.join(sshd.home, 'big-old.bin'), Buffer.alloc(12 << 20, 1), { mode: 0o644 });
    await s.upload(src, 'bulk/a b/big.bin', 0o700);
    await s.upload(src, 'big-old.bin', 0o755);
    expect(readFileSync(path.join(sshd.home, 'bulk/a b/big.bin')).equals(body)).toBe(true);
    expect(statSync(path.join(sshd.home, 'bulk/a b/big.bin')).mode & 0o777).toBe(0o700);
    expect(readFileSync(path.join(sshd.home, 'big-old.bin')).equals(body)).toBe(true);
    expect(statSync(path.join(sshd.home, 'big-old.bin')).mode & 0o777).toBe(0o755);
    const back = path.join(tmp, 'big-back.bin');
    await s.download('big-old.bin', back);
    expect(readFileSync(back).equals(body)).toBe(true);
    // The guest's execute bits are kept (never group- or world-writable).
    expect(statSync(back).mode & 0o777).toBe(0o755);
    writeFileSync(path.join(sshd.home, 'existing-file-as-folder.txt'), 'x');
    await expect(s.upload(src, 'existing-file-as-folder.txt/x.bin', 0o700)).rejects.toThrow(
      /cannot write existing-file-as-folder.txt\/x.bin in the machine: /,
    );
  });

  it('globs artifacts with Go path.Match rules over SFTP and downloads them', async () => {
    const r = await run(
      s,
      job('mk', [
        'mkdir -p out/sub',
        'echo a > out/a.txt',
        'echo b > out/b.txt',
        'echo c > out/c.log',
        'echo d > out/sub/d.txt',
        'ln -s a.txt out/link.txt',
        'mkdir out/dir.txt',
      ]),
    );
    expect(r.exitCode).toBe(0);
    expect(await s.glob('out/*.txt')).toEqual(['out/a.txt', 'out/b.txt', 'out/link.txt']);
    expect(await s.glob('out/[ab].txt')).toEqual(['out/a.txt', 'out/b.txt']);
    expect(await s.glob('out/?.log')).toEqual(['out/c.log']);
    expect(await s.glob('out/*/*.txt')).toEqual(['out/sub/d.txt']);
    expect(await s.glob('out/**.txt')).toEqual(['out/a.txt', 'out/b.txt', 'out/link.txt']);
    expect(await s.glob('out/nothing*')).toEqual([]);
    expect(await s.glob('out/c.log')).toEqual(['out/c.log']);
    expect(await s.glob('/root/out/a.*')).toEqual(['/root/out/a.txt']);
    await expect(s.glob('out/[a.txt')).rejects.toThrow(/bad pattern/);
    const dst = path.join(tmp, 'a.txt');
    await s.download('out/a.txt', dst);
    expect(readFileSync(dst, 'utf8')).toBe('a\n');
    await expect(s.download('out/missing', path.join(tmp, 'x'))).rejects.toThrow();
  });

  it('keeps a collected program executable (never group- or world-writable); a plain file stays plain', async () => {
    const r = await run(
      s,
      job('bin', ['printf "#!/bin/sh\\necho built\\n" > tool', 'chmod 0777 tool', 'echo data > plain', 'chmod 0666 plain']),
    );
    expect(r.exitCode).toBe(0);
    const tool = path.join(tmp, 'tool');
    const plain = path.join(tmp, 'plain');
    await s.download('tool', tool);
    await s.download('plain', plain);
    expect(statSync(tool).mode & 0o777).toBe(0o755);
    expect(statSync(plain).mode & 0o111).toBe(0);
  });
});
