// How the qemu driver (cold and warm boots alike) logs in to its machine.
import { readFile } from 'node:fs/promises';
import type { Reporter } from '../../core/reporter.js';
import type { DriverSettings } from '../../config/settings.js';
import type { SshTarget } from '../../transport/ssh/index.js';
import type { ProbeHints } from '../../transport/ssh/banner.js';

export interface GuestLogin {
  /** The host port QEMU forwards to the guest's port 22. */
  port: number;
  settings: Pick<DriverSettings, 'sshUser' | 'sshPassword'>;
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
    user: o.settings.sshUser ?? 'root',
    privateKey: o.privateKey,
    password: o.settings.sshPassword ?? '',
    deadline: o.deadline,
    reporter: o.reporter,
    signal: o.signal,
    hints: o.hints,
    retryRefusedLogin: o.cloudInit ? true : undefined,
  };
}

/** The key to log in with: the cloud-init seed's, else -ssh-key's file, else none. */
export async function guestKey(settings: Pick<DriverSettings, 'sshKeyFile'>, cloudKey?: Buffer): Promise<Buffer | undefined> {
  return cloudKey ?? (settings.sshKeyFile ? await readFile(settings.sshKeyFile) : undefined);
}
