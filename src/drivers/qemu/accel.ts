// Which accelerator to boot with. KVM only where it really works: /dev/kvm
// must be readable and writable, and not PVM (a microVM's nested
// "pagetable-based" KVM, /sys/module/kvm_pvm, where guest kernels hang).
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { TcgThreads, Tristate } from '../../config/settings.js';

export type Accel = 'kvm' | 'tcg';

export interface KvmCheck {
  usable: boolean;
  /** Why not, for the build log. */
  why?: string;
}

export async function checkKvm(dev = '/dev/kvm', pvmModule = '/sys/module/kvm_pvm'): Promise<KvmCheck> {
  try {
    await access(dev, constants.R_OK | constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { usable: false, why: code === 'ENOENT' ? `${dev} does not exist` : `${dev} is not readable and writable by this user` };
  }
  try {
    await stat(pvmModule);
    return { usable: false, why: `${dev} is PVM (${pvmModule} exists), where guest kernels hang` };
  } catch {
    return { usable: true };
  }
}

/**
 * The QEMU arguments that select the accelerator. Software emulation runs every vCPU in one host thread
 * unless asked for one thread per vCPU: under multi-threaded TCG our Debian guests' kernels die of an int3
 * Oops while patching their own code in about one boot in twenty (docs/qemu.md, "Kernel panics").
 */
export function accelArgs(accel: Accel, cpus: number, tcgThreads?: TcgThreads): string[] {
  if (accel === 'kvm') return ['-accel', 'kvm'];
  if (cpus <= 1) return ['-accel', 'tcg'];
  return ['-accel', tcgThreads === 'multi' ? 'tcg,thread=multi' : 'tcg,thread=single'];
}

export interface AccelPlan {
  /** Accelerators to try, in order. */
  order: Accel[];
  note?: string;
}

export async function planAccel(setting: Tristate | undefined, check: () => Promise<KvmCheck> = () => checkKvm()): Promise<AccelPlan> {
  if (setting === 'off') return { order: ['tcg'] };
  if (setting === 'on') return { order: ['kvm'] };
  const kvm = await check();
  if (kvm.usable) return { order: ['kvm', 'tcg'] };
  return { order: ['tcg'], note: `KVM not used: ${kvm.why}; using software emulation (TCG), which is slower.` };
}
