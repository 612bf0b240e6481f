// What the action's main step leaves for the `djinn-vm` command of later steps
// (and for its own post step) about a kept machine: one JSON file, mode 0600,
// named by DJINN_VM_MACHINE in GITHUB_ENV. The env (secrets included) stays in
// this file instead of the job's environment.
import { appendFile, readFile } from 'node:fs/promises';
import type { EnvVar } from '../core/job.js';

export const MACHINE_ENV = 'DJINN_VM_MACHINE';

export interface MachineFile {
  version: 1;
  /** Always 127.0.0.1: the machine listens nowhere else. */
  host: string;
  port: number;
  user: string;
  /** Private key (OpenSSH format, mode 0600) the machine accepts for `user`. */
  keyFile: string;
  /** QEMU's pid, for the post step. */
  pid: number;
  /** When the build that booted it started, and when it was kept (ms since the epoch). */
  startedAt: number;
  keptAt: number;
  /** The manifest's env, then the `env` input: every command gets it, as a job does. */
  env: EnvVar[];
  /** Values the command masks in what it prints (the `env` input's). */
  masks: string[];
  /** One line appended per command served, for the post step's count. */
  commandsLog: string;
}

export class MachineFileError extends Error {}

export async function readMachineFile(file: string | undefined): Promise<MachineFile> {
  if (!file)
    throw new MachineFileError(
      `${MACHINE_ENV} is not set: run the djinn-vm action with keep: true in an earlier step of this job (it sets ${MACHINE_ENV} through GITHUB_ENV).`,
    );
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MachineFileError(
      `cannot read ${file} (${MACHINE_ENV}): ${(err as Error).message}. The kept machine is gone (the post step of the djinn-vm action stops it).`,
    );
  }
  const m = JSON.parse(text) as MachineFile;
  if (m.version !== 1 || typeof m.port !== 'number') throw new MachineFileError(`${file} is not a djinn-vm machine file.`);
  return m;
}

/** Counts one command served (best effort: a count must not fail the command). */
export async function countCommand(m: MachineFile, what: string): Promise<void> {
  await appendFile(m.commandsLog, `${new Date().toISOString()} ${what}\n`, { mode: 0o600 }).catch(() => {});
}
