// Preparing the runner for the qemu driver: QEMU installed, /dev/kvm usable.
// GitHub's hosted Ubuntu runners have /dev/kvm (root:kvm 0660) but the runner
// user is not in the kvm group, and no QEMU; both are fixed through sudo.
// The image builder's tools are installed the same way, only when a build needs them.
import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { access } from 'node:fs/promises';
import * as core from '@actions/core';
import { aptInstall } from '../host/install.js';
import { capabilitiesLacking, missingFor, type Capability, type Missing } from '../host/requirements.js';
import { formatDuration } from '../util/duration.js';
import { message } from '../core/errors.js';

export const KVM_RULE_FILE = '/etc/udev/rules.d/99-djinn-kvm.rules';
const KVM_RULE = 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"';

/** Runs a command with its output in the log; resolves to its exit status. */
export function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) => {
      core.info(`${cmd}: ${err.message}`);
      resolve(127);
    });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

function asRoot(cmd: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? [cmd[0], cmd.slice(1)] : ['sudo', ['-n', ...cmd]];
}

const WHAT: Record<Capability, string> = {
  qemu: 'QEMU',
  'image-build': 'the image builder',
  'image-build-userns': 'user namespaces for the image builder',
  'cloud-seed': 'the cloud-init seed tools',
  docker: 'the docker driver',
  'actions-cache': 'zstd for the cache',
};

/**
 * Installs what a build needs and the runner lacks: one apt-get call through
 * sudo, in a log group that says what was installed and how long it took.
 */
export async function installMissing(missing: Missing, runCmd = run, why?: string): Promise<void> {
  if (!missing.packages.length) return;
  const what = [...new Set(missing.capabilities.map((c) => WHAT[c]))].join(' and ');
  await core.group(`Installing ${what}: ${missing.packages.join(' ')}`, async () => {
    if (why) core.info(why);
    core.info(
      `This runner lacks ${missing.programs.join(', ')}: installing ${missing.packages.join(' ')} with ` +
        `apt-get${process.getuid?.() === 0 ? '' : ' through sudo'}.`,
    );
    const started = Date.now();
    await aptInstall(missing.packages, (l) => core.info(l), runCmd);
    core.info(`Installed ${missing.packages.join(' ')} in ${formatDuration(Date.now() - started)}.`);
  });
}

/**
 * Installs, in one apt-get call, what a qemu build lacks: QEMU, zstd (before the
 * first cache call), and what `also` adds (the builder's tools when the image is
 * to be built here, the cloud-init seed's for a catalogue image).
 */
export async function ensureQemu(also: Capability[] = [], why?: string, runCmd = run): Promise<void> {
  const needed = missingFor(['qemu', 'actions-cache', ...also]);
  if (!needed.programs.length) return;
  // The capabilities named in the log group: only those with something missing.
  const missing = { ...needed, capabilities: capabilitiesLacking(needed) };
  try {
    await installMissing(missing, runCmd, why);
  } catch (err) {
    throw new Error(`installing QEMU with apt-get failed: ${message(err)}`, { cause: err });
  }
}

async function readWrite(device: string): Promise<boolean> {
  try {
    await access(device, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes /dev/kvm usable when it exists: a udev rule through sudo when the
 * runner user cannot open it. Returns the accelerator to expect.
 */
export async function prepareKvm(device = '/dev/kvm', runCmd = run): Promise<{ accelerator: 'kvm' | 'tcg'; why?: string }> {
  if (!existsSync(device)) return { accelerator: 'tcg', why: `this runner has no ${device} (no hardware virtualisation)` };
  if (await readWrite(device)) return { accelerator: 'kvm' };
  core.info(`${device} exists but this user cannot open it: adding the udev rule ${KVM_RULE_FILE} through sudo.`);
  const script = `echo '${KVM_RULE}' > ${KVM_RULE_FILE} && udevadm control --reload-rules && udevadm trigger --name-match=kvm && udevadm settle --timeout=10`;
  const code = await runCmd(...asRoot(['sh', '-c', script]));
  if (code === 0 && (await readWrite(device))) return { accelerator: 'kvm' };
  return {
    accelerator: 'tcg',
    why: `${device} is not accessible to this user and granting access through sudo failed${code !== 0 ? ` (exit ${code})` : ''}`,
  };
}
