// Stall detection while a machine boots (issue 14). A guest that keeps
// writing to its serial console is slow, not stalled; one that writes nothing
// and shows no SSH banner for a whole stall window is hung (a frozen QEMU, a
// guest spinning with interrupts off): the driver kills it and boots again
// instead of waiting out the boot timeout.
import { stat } from 'node:fs/promises';
import type { Accel } from './accel.js';

export const TCG_STALL_MS = 20_000;
export const KVM_STALL_MS = 10_000;
/** Boots again this many times after a stall unless told otherwise. */
export const DEFAULT_BOOT_RETRIES = 1;
const POLL_MS = 250;

export function defaultStallMs(accel: Accel): number {
  return accel === 'kvm' ? KVM_STALL_MS : TCG_STALL_MS;
}

/** Thrown by a boot attempt whose guest stalled; the message is the log line's reason. */
export class BootStalled extends Error {
  constructor(
    readonly windowMs: number,
    /** Console bytes written before the silence. */
    readonly consoleBytes: number,
  ) {
    super(
      consoleBytes > 0
        ? `no new serial console output and no SSH banner for ${fmtSeconds(windowMs)}`
        : `no serial console output at all and no SSH banner within ${fmtSeconds(windowMs)}`,
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

/**
 * Watches the console file's size: aborts `signal` once it has not grown for
 * `windowMs` while the watch runs. Starts counting now (QEMU just started).
 */
export function watchStall(consoleLog: string, windowMs: number): StallWatch {
  const ctl = new AbortController();
  let size = 0;
  let changedAt = Date.now();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void stat(consoleLog)
      .then(
        (st) => st.size,
        () => 0,
      )
      .then((now) => {
        busy = false;
        if (ctl.signal.aborted) return;
        if (now !== size) {
          size = now;
          changedAt = Date.now();
        } else if (Date.now() - changedAt >= windowMs) {
          clearInterval(timer);
          ctl.abort(new BootStalled(windowMs, size));
        }
      });
  }, POLL_MS);
  timer.unref();
  return { signal: ctl.signal, stop: () => clearInterval(timer) };
}

function fmtSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}
