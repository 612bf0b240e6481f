// Installing missing host packages with apt-get: directly as root, else
// through `sudo -n` (passwordless sudo, as on GitHub's hosted runners).
import { spawn } from 'node:child_process';
import { aptLine, isRoot } from './requirements.js';

export type CommandRunner = (cmd: string, args: string[]) => Promise<number>;

/** Runs a command with its output passed through (to stderr, keeping stdout clean); resolves to its exit status. */
export const runInherit: CommandRunner = (cmd, args) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', () => resolve(127));
    child.on('close', (code) => resolve(code ?? 1));
  });

export function asRoot(cmd: string[], root = isRoot()): [string, string[]] {
  return root ? [cmd[0], cmd.slice(1)] : ['sudo', ['-n', ...cmd]];
}

/** Whether `sudo -n` works for this user without a password. */
export async function passwordlessSudo(runCmd: CommandRunner = quiet): Promise<boolean> {
  return (await runCmd('sudo', ['-n', 'true'])) === 0;
}

const quiet: CommandRunner = (cmd, args) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('error', () => resolve(127));
    child.on('close', (code) => resolve(code ?? 1));
  });

export class InstallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstallError';
  }
}

let updated = false;

/**
 * One `apt-get install` for all the packages (after one `apt-get update` per
 * process). Throws an InstallError naming the command to run by hand.
 */
export async function aptInstall(packages: string[], log: (line: string) => void, runCmd: CommandRunner = runInherit): Promise<void> {
  if (!packages.length) return;
  const root = isRoot();
  if (!root && !(await passwordlessSudo())) {
    throw new InstallError(
      `installing ${packages.join(', ')} needs root, and sudo asks this user for a password. Run as root, or install them first: ${aptLine(packages, false)}`,
    );
  }
  const env = ['env', 'DEBIAN_FRONTEND=noninteractive'];
  if (!updated) {
    log(`${root ? '' : 'sudo -n '}apt-get update`);
    if ((await runCmd(...asRoot([...env, 'apt-get', 'update', '-q'], root))) !== 0)
      log('apt-get update failed; trying the install anyway.');
    else updated = true;
  }
  log(`${root ? '' : 'sudo -n '}apt-get install -y --no-install-recommends ${packages.join(' ')}`);
  const code = await runCmd(...asRoot([...env, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages], root));
  if (code !== 0) throw new InstallError(`"${aptLine(packages, root)}" failed (exit ${code}); install them in an earlier step.`);
}
