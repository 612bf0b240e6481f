// The action's `keep`: the machine stays up after the manifest's build for the
// later steps of the job. Main installs a fresh key in it, writes the machine
// file and a `djinn-vm` command (GITHUB_PATH) for them; post stops it (keep-post.ts).
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as core from '@actions/core';
import ssh2 from 'ssh2';
import { DriverError, UsageError } from '../core/errors.js';
import { type Driver } from '../drivers/driver.js';
import { type EnvVar } from '../core/job.js';
import { shellQuote } from '../core/shell.js';
import { parseManifest } from '../manifest/parse.js';
import { makePlan, type Plan } from '../manifest/plan.js';
import type { Manifest } from '../manifest/types.js';
import { MACHINE_ENV, type MachineFile } from '../vm-command/machine.js';
import type { ActionInputs } from './inputs.js';
import { STATE } from './state.js';

// ssh2 is CommonJS: Node's ESM loader only gives its default export.
const { utils } = ssh2;

/** Appends our public key to the login user's authorized_keys (made private, as sshd wants). */
const INSTALL_KEY = `umask 077
cd || exit 1
mkdir -p .ssh && cat >>.ssh/authorized_keys && chmod 700 .ssh && chmod 600 .ssh/authorized_keys`;

/** dist/djinn-vm.js, next to this bundle's folder (dist/action/). */
function commandScript(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'djinn-vm.js');
}

export interface KeepOptions {
  runDir: string;
  env: EnvVar[];
  masks: string[];
  startedAt: number;
}

/** Hands the machine over to the later steps; throws (and the runner destroys it) when it cannot. */
export async function keepMachine(driver: Driver, o: KeepOptions): Promise<MachineFile> {
  if (!driver.keep || !driver.exec)
    throw new DriverError(`the ${driver.type} driver cannot keep its machine running (keep: true needs the qemu driver).`);
  const dir = path.join(o.runDir, 'kept');
  await mkdir(path.join(dir, 'bin'), { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const keys = utils.generateKeyPairSync('ed25519', { comment: 'djinn-vm kept machine' });
  const keyFile = path.join(dir, 'id_ed25519');
  await writeFile(keyFile, keys.private, { mode: 0o600 });
  const installed = await driver.exec(`/bin/sh -c ${shellQuote(INSTALL_KEY)}`, { stdin: Readable.from([`${keys.public}\n`]) });
  if (installed.code !== 0)
    throw new DriverError(
      `cannot install the SSH key in the machine: ${installed.stderr.toString().trim() || `exit status ${installed.code}`}`,
    );
  const kept = await driver.keep();
  const machine: MachineFile = {
    version: 1,
    host: '127.0.0.1',
    port: kept.sshPort,
    user: kept.user,
    keyFile,
    pid: kept.pid,
    startedAt: o.startedAt,
    keptAt: Date.now(),
    env: o.env,
    masks: o.masks,
    commandsLog: path.join(dir, 'commands.log'),
  };
  const machineFile = path.join(dir, 'machine.json');
  await writeFile(machineFile, `${JSON.stringify(machine, null, 2)}\n`, { mode: 0o600 });
  await writeFile(machine.commandsLog, '', { mode: 0o600 });
  // The runner's own node runs the command: a later step may have another node (or none) on PATH.
  const bin = path.join(dir, 'bin', 'djinn-vm');
  await writeFile(bin, `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(commandScript())} "$@"\n`, { mode: 0o700 });
  core.saveState(STATE.kept, machineFile);
  core.saveState(STATE.keptDir, kept.dir);
  core.addPath(path.dirname(bin));
  core.exportVariable(MACHINE_ENV, machineFile);
  core.exportVariable('DJINN_VM_SSH_PORT', String(kept.sshPort));
  core.exportVariable('DJINN_VM_SSH_KEY', keyFile);
  core.setOutput('ssh-port', String(kept.sshPort));
  core.setOutput('ssh-key', keyFile);
  core.info(
    `Keeping the machine running for the next steps: djinn-vm SCRIPT, djinn-vm exec -- CMD, djinn-vm cp (or ssh -i ` +
      `${keyFile} -p ${kept.sshPort} ${kept.user}@127.0.0.1). The post step stops it.`,
  );
  return machine;
}

/** The values the action masks (see readInputs), which the command masks too. */
export function secretValues(env: EnvVar[]): string[] {
  return env.map((e) => e.value).filter((v) => v.trim().length >= 3);
}

/** `manifest: ''` with `keep: true`: a build with no jobs that only boots the image (the `image` input, debian/stable by default). */
export function bootOnlyBuild(inputs: ActionInputs): { file: string; manifest: Manifest; plan: Plan } {
  if (!inputs.keep)
    throw new UsageError('is empty: name a manifest (default .djinn.yml), or set keep: true to boot the image only.', {}, 'input manifest');
  const manifest = parseManifest('driver:\n  type: qemu\n  image: debian/stable\n', '(no manifest)');
  return { file: '(no manifest)', manifest, plan: makePlan(manifest, { stage: inputs.stage }) };
}

/** keep: true needs one machine, and one that can outlive the step (qemu). */
export function checkKeep(inputs: ActionInputs, builds: { file: string; manifest: Manifest }[]): void {
  if (!inputs.keep) return;
  if (builds.length > 1)
    throw new UsageError(
      `true keeps one machine, but the manifest input names ${builds.length} manifests (${builds.map((b) => b.file).join(', ')}): run one per step.`,
      {},
      'input keep',
    );
  const other = builds.find((b) => b.manifest.driver.type !== 'qemu');
  if (other)
    throw new UsageError(`true needs the qemu driver; ${other.file} uses the ${other.manifest.driver.type} driver.`, {}, 'input keep');
}
