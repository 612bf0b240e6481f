// The `djinn-vm` command of the steps after a `keep: true` step: runs a script
// or a command in the kept machine exactly as a Djinn job runs (as the login
// user, root by default, in its home folder, with the manifest's env and the
// `env` input, output live, exit status passed through, secrets masked), and
// copies files and folders in and out. It reaches the machine with what the
// main step left in DJINN_VM_MACHINE.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { silentReporter, type Reporter } from '../core/reporter.js';
import { jobScript } from '../runner/script.js';
import { shellQuote } from '../core/shell.js';
import { SshSession } from '../transport/ssh/index.js';
import { copyIn, copyOut, CopyError } from './cp.js';
import { countCommand, MACHINE_ENV, MachineFileError, readMachineFile, type MachineFile } from './machine.js';
import { Masker } from './mask.js';

export const USAGE = `usage:
  djinn-vm SCRIPT_FILE            run a script in the kept machine as a Djinn job runs (shell: djinn-vm {0})
  djinn-vm exec -- CMD [ARG...]   run one command there
  djinn-vm cp LOCAL :REMOTE       copy a file or folder into the machine (REMOTE relative to the home folder)
  djinn-vm cp :REMOTE LOCAL       copy a file or folder out of it`;

/** Exit statuses of our own (a script's own status passes through). */
const EXIT_USAGE = 2;
const EXIT_NO_STATUS = 255;

class UsageProblem extends Error {}

type Request = { kind: 'script'; file: string } | { kind: 'exec'; argv: string[] } | { kind: 'cp'; from: string; to: string };

export function parseArgs(args: string[]): Request {
  const [first, ...rest] = args;
  if (first === undefined || first === '-h' || first === '--help') throw new UsageProblem('');
  if (first === 'exec') {
    const argv = rest[0] === '--' ? rest.slice(1) : rest;
    if (argv.length === 0) throw new UsageProblem('exec: give the command to run, e.g. djinn-vm exec -- make test');
    return { kind: 'exec', argv };
  }
  if (first === 'cp') {
    const paths = rest[0] === '--' ? rest.slice(1) : rest;
    if (paths.length !== 2) throw new UsageProblem(`cp: expected two paths (LOCAL :REMOTE or :REMOTE LOCAL), got ${paths.length}`);
    const [from, to] = paths;
    if (from.startsWith(':') === to.startsWith(':'))
      throw new UsageProblem('cp: exactly one of the two paths names the machine, with a leading ":" (e.g. djinn-vm cp out/ :build/out)');
    return { kind: 'cp', from, to };
  }
  if (rest.length) throw new UsageProblem(`unexpected arguments after the script file ${first}: ${rest.join(' ')}`);
  return { kind: 'script', file: first };
}

/** On the Actions runner: no `::command::` from the guest may reach it (outputs, masks). */
function workflowCommandGuard(write: (t: string) => void): { start(): void; end(): void } {
  if (process.env.GITHUB_ACTIONS !== 'true') return { start() {}, end() {} };
  const token = randomBytes(16).toString('hex');
  return {
    start: () => write(`::stop-commands::${token}\n`),
    end: () => write(`\n::${token}::\n`),
  };
}

async function connect(m: MachineFile, signal: AbortSignal): Promise<SshSession> {
  const reporter: Reporter = { ...silentReporter, warn: (msg) => process.stderr.write(`djinn-vm: ${msg}\n`) };
  return SshSession.connect({
    host: m.host,
    port: m.port,
    user: m.user,
    privateKey: await readFile(m.keyFile),
    deadline: Date.now() + 30_000,
    reporter,
    signal,
  }).catch((err: unknown) => {
    throw new MachineFileError(`cannot reach the kept machine on ${m.host}:${m.port}: ${(err as Error).message}`);
  });
}

async function runScript(session: SshSession, m: MachineFile, name: string, script: string, signal: AbortSignal): Promise<number> {
  const masker = new Masker(m.masks);
  const out = (t: string) => {
    if (t) process.stdout.write(t);
  };
  const guard = workflowCommandGuard(out);
  guard.start();
  const res = await session.execute(
    { stage: 'step', name, scriptName: 'step.sh', script, env: m.env },
    {
      write: (chunk) => {
        const text = masker.push(chunk);
        // A full stdout pipe pauses the guest's output (see OutputSink).
        return text && !process.stdout.write(text) ? new Promise((r) => process.stdout.once('drain', r)) : undefined;
      },
    },
    signal,
  );
  out(masker.end());
  guard.end();
  if (res.exitCode !== null) return res.exitCode;
  process.stderr.write(`djinn-vm: ${res.error ?? 'the command ended without an exit status'}\n`);
  return EXIT_NO_STATUS;
}

export async function run(args: string[]): Promise<number> {
  let req: Request;
  try {
    req = parseArgs(args);
  } catch (err) {
    const msg = (err as Error).message;
    process.stderr.write(msg ? `djinn-vm: ${msg}\n${USAGE}\n` : `${USAGE}\n`);
    return msg ? EXIT_USAGE : 0;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let session: SshSession | undefined;
  try {
    // Read the script before anything connects: a wrong path is the step's own mistake.
    const script = req.kind === 'script' ? await readScript(req.file) : undefined;
    const m = await readMachineFile(process.env[MACHINE_ENV]);
    session = await connect(m, stop.signal);
    await countCommand(m, req.kind);
    if (req.kind === 'script') return await runScript(session, m, req.file, jobScript([script!]), stop.signal);
    if (req.kind === 'exec')
      return await runScript(session, m, req.argv[0], `#!/bin/sh\nexec ${req.argv.map(shellQuote).join(' ')}\n`, stop.signal);
    if (req.from.startsWith(':')) await copyOut(session, req.from.slice(1) || '.', req.to, stop.signal);
    else await copyIn(session, req.from, req.to.slice(1) || '.', stop.signal);
    return 0;
  } catch (err) {
    if (err instanceof CopyError || err instanceof MachineFileError || err instanceof UsageProblem) {
      process.stderr.write(`djinn-vm: ${err.message}\n`);
      return err instanceof UsageProblem ? EXIT_USAGE : err instanceof CopyError ? 1 : EXIT_NO_STATUS;
    }
    process.stderr.write(`djinn-vm: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await session?.close();
  }
}

async function readScript(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageProblem(`cannot read the script file ${file}: ${(err as Error).message}`);
  }
}
