// Stall detection while a machine boots. A guest that keeps writing to its
// serial console is slow, not stalled; one that writes nothing and shows no SSH
// banner for a whole stall window is hung (a frozen QEMU, a guest stuck with
// its console silent): the driver kills it and boots again instead of waiting
// out the boot timeout.
//
// A healthy guest is silent for long stretches too: firmware, boot loader and
// a `quiet` kernel print nothing for 7-16 s under TCG on a busy 2-core host
// (bench/boot-hangs.ts), and a systemd image says nothing between its early
// generator messages and sshd. So while the console is quiet, QEMU's own CPU
// time counts as progress (a frozen QEMU uses none), but only for
// QUIET_WINDOWS stall windows: a guest quiet that long is stalled, busy or not.
import { open, readFile, stat } from 'node:fs/promises';
import type { Accel } from './accel.js';

export const TCG_STALL_MS = 20_000;
export const KVM_STALL_MS = 10_000;
/** How many stall windows a busy QEMU may stay quiet on its console. */
export const QUIET_WINDOWS = 3;
const POLL_MS = 250;
const CPU_SAMPLE_MS = 1000;
/** Less CPU than this (in cores, over a sample) is a QEMU that does not run. */
const BUSY_CORES = 0.05;
/** Linux's USER_HZ: /proc/PID/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

/**
 * cloud-init's first boot runs its stages before sshd with the console quiet
 * (a systemd image booted with `quiet`), for far longer than our own images.
 */
export const CLOUD_INIT_STALL_FACTOR = 4;

export function defaultStallMs(accel: Accel, cloudInit = false): number {
  return (accel === 'kvm' ? KVM_STALL_MS : TCG_STALL_MS) * (cloudInit ? CLOUD_INIT_STALL_FACTOR : 1);
}

/** Thrown by a boot attempt whose guest stalled; the message is the log line's reason. */
export class BootStalled extends Error {
  constructor(
    readonly windowMs: number,
    /** Console bytes written before the silence. */
    readonly consoleBytes: number,
    /** How long the guest showed no progress. */
    readonly silentMs = windowMs,
    /** Set when QEMU itself used no CPU time (frozen, stopped). */
    readonly idle = false,
    /** The console's "Kernel panic" line: the guest died, however busy QEMU stays. */
    readonly panic?: string,
  ) {
    const quiet = consoleBytes > 0 ? 'no new serial console output' : 'no serial console output';
    super(
      panic
        ? `the guest kernel panicked (${panic})`
        : idle
          ? `QEMU used no CPU time and the guest gave ${quiet} and no SSH banner for ${fmtSeconds(silentMs)}`
          : consoleBytes > 0
            ? `no new serial console output and no SSH banner for ${fmtSeconds(silentMs)}`
            : `no serial console output at all and no SSH banner within ${fmtSeconds(silentMs)}`,
    );
    this.name = 'BootStalled';
  }
}

export interface StallWatch {
  /** Aborts (with a BootStalled reason) when the guest stalls. */
  readonly signal: AbortSignal;
  /** The banner came (or the boot ended): stop watching. */
  stop(): void;
}

/** utime + stime of a process in ticks, undefined where /proc cannot tell (not Linux, gone). */
async function cpuTicks(pid: number): Promise<number | undefined> {
  try {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Watches the console file's size (and, before the first output, QEMU's CPU
 * time when `pid` is given): aborts `signal` once the guest has shown no
 * progress for `windowMs`. Starts counting now (QEMU just started).
 */
export function watchStall(consoleLog: string, windowMs: number, pid?: number): StallWatch {
  const ctl = new AbortController();
  const started = Date.now();
  let size = 0;
  let changedAt = started;
  let busyAt = started;
  let sample: { at: number; ticks: number } | undefined;
  let busy = false;
  let stopped = false;
  // Several CPU samples per window, so that a busy QEMU shows it in time.
  const sampleMs = Math.min(CPU_SAMPLE_MS, windowMs / 4);
  const poll = async () => {
    const now = Date.now();
    const bytes = await stat(consoleLog).then(
      (st) => st.size,
      () => 0,
    );
    if (bytes !== size) {
      const panic = bytes > size ? await panicLine(consoleLog, size, bytes) : undefined;
      size = bytes;
      changedAt = now;
      if (panic) return new BootStalled(windowMs, size, now - started, false, panic);
    }
    if (pid !== undefined && (!sample || now - sample.at >= sampleMs)) {
      const ticks = await cpuTicks(pid);
      if (ticks !== undefined) {
        if (sample && (ticks - sample.ticks) / TICKS_PER_SECOND >= (BUSY_CORES * (now - sample.at)) / 1000) busyAt = now;
        sample = { at: now, ticks };
      }
    }
    const quietMs = now - changedAt;
    if (!sample) {
      // No CPU figures (not Linux, or no pid): the console alone decides.
      if (quietMs >= windowMs) return new BootStalled(windowMs, size);
    } else if (quietMs >= QUIET_WINDOWS * windowMs) {
      return new BootStalled(windowMs, size, QUIET_WINDOWS * windowMs);
    } else if (now - Math.max(busyAt, changedAt) >= windowMs) {
      return new BootStalled(windowMs, size, windowMs, true);
    }
    return undefined;
  };
  const timer = setInterval(() => {
    if (busy || ctl.signal.aborted) return;
    busy = true;
    void poll().then((stalled) => {
      busy = false;
      if (stalled && !stopped && !ctl.signal.aborted) {
        clearInterval(timer);
        ctl.abort(stalled);
      }
    });
  }, POLL_MS);
  timer.unref();
  return {
    signal: ctl.signal,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/**
 * A panicked guest kernel never boots, but a vCPU may spin at full speed in the
 * panic loop, which the CPU-time check would take for a busy boot for three
 * windows. Seen under multi-threaded TCG: an int3 Oops in code being patched.
 */
const KERNEL_PANIC = /Kernel panic - not syncing[^\n]*/;
/** Enough of the new console bytes to hold the panic line with what came just before it. */
const PANIC_SCAN_BYTES = 64 * 1024;

async function panicLine(consoleLog: string, from: number, to: number): Promise<string | undefined> {
  const start = Math.max(0, from - 200, to - PANIC_SCAN_BYTES);
  const fh = await open(consoleLog, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const buf = Buffer.alloc(to - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return KERNEL_PANIC.exec(buf.subarray(0, bytesRead).toString('latin1'))?.[0].trim();
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

function fmtSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}
