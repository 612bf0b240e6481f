// How the qemu driver (cold and warm boots alike) logs in to its machine.
import { readFile } from 'node:fs/promises';
import type { Reporter } from '../../core/reporter.js';
import type { SshSettings } from '../../config/settings.js';
import type { SshTarget } from '../../transport/ssh/index.js';
import type { ProbeHints } from '../../transport/ssh/banner.js';

export interface GuestLogin {
  /** The host port QEMU forwards to the guest's port 22. */
  port: number;
  ssh: SshSettings;
  privateKey?: Buffer;
  /** A Date.now() time. */
  deadline: number;
  reporter: Reporter;
  signal?: AbortSignal;
  /** A catalogue image: cloud-init authorises our key during the boot, maybe after sshd is up. */
  cloudInit: boolean;
  hints?: ProbeHints;
}

/** The SSH target of a machine on 127.0.0.1: root with an empty password unless the settings say otherwise. */
export function sshTarget(o: GuestLogin): SshTarget {
  return {
    host: '127.0.0.1',
    port: o.port,
    user: o.ssh.user,
    privateKey: o.privateKey,
    password: o.ssh.password ?? '',
    deadline: o.deadline,
    reporter: o.reporter,
    signal: o.signal,
    hints: o.hints,
    retryRefusedLogin: o.cloudInit ? true : undefined,
  };
}

/** The key to log in with: the cloud-init seed's, else -ssh-key's file, else none. */
export async function guestKey(ssh: SshSettings, cloudKey?: Buffer): Promise<Buffer | undefined> {
  return cloudKey ?? (ssh.keyFile ? await readFile(ssh.keyFile) : undefined);
}
