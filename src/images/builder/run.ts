// Runs the host tools the builder needs, failing with the tool's own message.
import { spawn } from 'node:child_process';

export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

export interface RunOptions {
  cwd?: string;
  input?: string | Buffer;
  signal?: AbortSignal;
  /** Called with each line of the tool's stderr/stdout (progress). */
  onLine?: (line: string) => void;
}

/** Runs `cmd args`, resolves with stdout; rejects with the command and the tail of its output. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env,
      PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
      MTOOLS_SKIP_CHECK: '1',
      LC_ALL: 'C.UTF-8',
    };
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal });
    const out: Buffer[] = [];
    let tail = '';
    let partial = '';
    const onErr = (c: Buffer) => {
      tail = (tail + c.toString()).slice(-4000);
      if (!opts.onLine) return;
      partial += c.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) opts.onLine(l);
    };
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', onErr);
    child.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') reject(new BuildError(`${cmd} is not installed on this machine (needed to build images).`));
      else if (err.name === 'AbortError') reject(new BuildError('image build cancelled.'));
      else reject(new BuildError(`${cmd}: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      if (code === 0) resolve(Buffer.concat(out));
      else {
        const why = code === null ? `was killed by ${sig}` : `exited with status ${code}`;
        reject(new BuildError(`${cmd} ${why}:\n${tail.trim()}`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
