// The whole warm-start sequence around a driver's own launch and boot wait:
// restore when a state matches (falling back to a cold boot with a one-line
// reason), else boot cold and save the idle machine before anything connects.
import {
  finishRestore,
  planWarmStart,
  restoreFailed,
  saveAndContinue,
  type LaunchChange,
  type RestorePlan,
  type WarmPlan,
  type WarmRequest,
} from './save-restore.js';
import { runFixups, type FixupResult, type GuestRunner } from './fixups.js';
import type { StateKey } from './key.js';
import { firstLine } from '../../../core/text.js';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { OVERLAY_FILE } from './store.js';

export interface WarmSequenceHooks<P> {
  /** Starts QEMU with the driver's launch description changed as `change` says. */
  launch(change: LaunchChange): Promise<P>;
  alive(proc: P): boolean;
  /** Stops a QEMU that will not be used. */
  stop(proc: P): Promise<void>;
  /** Waits until the guest's SSH server answers (banner), throwing when it does not by `deadline`. */
  waitForSsh(proc: P, deadline: number): Promise<void>;
  /** For a restored machine: connect at once (a failure falls back to a cold boot). Defaults to waitForSsh. */
  connectRestored?(proc: P, deadline: number): Promise<void>;
  /** QEMU's own words when it exited early (stderr), for the reason line. */
  exitText?(proc: P): Promise<string>;
  /** True for a QEMU failure that says nothing about the state (e.g. the host port was taken): rethrown, state kept. */
  isTransient?(stderr: string): boolean;
  log(line: string): void;
  /** A line that is a warning (a saved state that could not be used); defaults to log. */
  warn?(line: string): void;
}

export interface WarmSequenceResult<P> {
  proc: P;
  start: 'booted' | 'restored';
  /** From launch to an SSH server that answers (for the cold path: before the save). */
  startSeconds: number;
  plan: WarmPlan;
  /** The state's key: the one restored, or the one saved by this boot. */
  stateKey?: StateKey;
  /** Set when a state was saved by this boot. */
  savedSeconds?: number;
  /** The published overlay of the state saved by this boot (the disk below the layer the machine writes to now). */
  savedOverlay?: string;
}

export interface WarmSequenceOptions {
  /** How long a restored machine may take to show its SSH banner before we give up on it. */
  restoreBannerMs?: number;
  /** Deadline for a cold boot (the driver's boot timeout). */
  bootTimeoutMs: number;
  signal?: AbortSignal;
  /** A stage state to try first (falling back, with one warning line, to the usual plan). */
  stageRestore?: RestorePlan;
}

/** Runs the plan; a cold boot that fails throws whatever the driver's waitForSsh throws. */
export async function runWarmSequence<P>(
  req: WarmRequest,
  hooks: WarmSequenceHooks<P>,
  opts: WarmSequenceOptions,
): Promise<WarmSequenceResult<P>> {
  if (opts.stageRestore) {
    const stagePlan = opts.stageRestore;
    hooks.log(`stage cache: ${stagePlan.note}`);
    const r = await tryRestore(stagePlan, hooks, opts);
    if ('result' in r) return r.result;
    (hooks.warn ?? hooks.log)(`stage cache: could not restore the saved machine (${r.reason}); running the stages`);
    await stagePlan.store.forget(stagePlan.key, stagePlan.found.manifest.generation);
    await rm(stagePlan.qmpSocket, { force: true });
  }
  let plan = await planWarmStart(req);
  if (req.mode !== 'off') hooks.log(`warm start: ${plan.note}`);
  if (plan.kind === 'restore') {
    const r = await tryRestore(plan, hooks, opts);
    if ('result' in r) return r.result;
    hooks.log(`warm start: could not restore the saved machine (${r.reason}); booting cold`);
    plan = await restoreFailed(plan, req, r.reason);
  }
  const t0 = Date.now();
  let proc: P;
  try {
    proc = await hooks.launch(plan.launch);
    await hooks.waitForSsh(proc, t0 + opts.bootTimeoutMs);
  } catch (err) {
    if (plan.kind === 'save') await plan.pending.abandon();
    throw err;
  }
  const startSeconds = (Date.now() - t0) / 1000;
  const result: WarmSequenceResult<P> = { proc, start: 'booted', startSeconds, plan };
  if (plan.kind === 'save') {
    const saved = await saveAndContinue(plan, { tempDir: req.tempDir, bootSeconds: startSeconds, signal: opts.signal });
    if (saved.error) hooks.log(`warm start: could not save the booted machine (${shortLine(saved.error)}); the next build boots cold too`);
    else {
      result.savedSeconds = saved.seconds;
      result.stateKey = saved.manifest!.key;
      result.savedOverlay = path.join(plan.store.keyDir(saved.manifest!.key), saved.manifest!.generation, OVERLAY_FILE);
      const mb = ((saved.manifest!.state.bytes + saved.manifest!.overlay.bytes) / 1e6).toFixed(0);
      hooks.log(`warm start: saved the booted machine in ${saved.seconds.toFixed(1)} s (${mb} MB); later builds restore it`);
    }
  }
  return result;
}

/** Launches a restore and connects; a failure that says something about the state is a reason, anything else is thrown. */
async function tryRestore<P>(
  plan: RestorePlan,
  hooks: WarmSequenceHooks<P>,
  opts: WarmSequenceOptions,
): Promise<{ result: WarmSequenceResult<P> } | { reason: string }> {
  const t0 = Date.now();
  const proc = await hooks.launch(plan.launch);
  try {
    await finishRestore(plan, { timeoutMs: 30_000, alive: () => hooks.alive(proc), signal: opts.signal });
    await (hooks.connectRestored ?? hooks.waitForSsh)(proc, Date.now() + (opts.restoreBannerMs ?? 30_000));
    return { result: { proc, start: 'restored', startSeconds: (Date.now() - t0) / 1000, plan, stateKey: plan.key } };
  } catch (err) {
    await hooks.stop(proc);
    if (opts.signal?.aborted) throw err;
    const stderr = hooks.exitText ? await hooks.exitText(proc) : '';
    if (hooks.isTransient?.(stderr)) throw err;
    // QEMU's own error (e.g. "Size mismatch: pc.ram ...") says more than a closed QMP socket.
    const said = qemuError(stderr);
    return { reason: said || shortLine((err as Error).message) || 'unknown error' };
  }
}

/** After connecting: fix the clock and the random pool of a restored machine (no-op for a booted one). */
export async function afterConnect(
  result: Pick<WarmSequenceResult<unknown>, 'start'>,
  run: GuestRunner,
  log: (line: string) => void,
): Promise<FixupResult | undefined> {
  if (result.start !== 'restored') return undefined;
  const r = await runFixups(run);
  for (const w of r.warnings) log(w);
  return r;
}

function qemuError(stderr: string): string {
  const line = stderr.split('\n').find((l) => /mismatch|unknown savevm|load of migration failed|error|invalid/i.test(l));
  return line ? shortLine(line.replace(/^qemu-system-\w+:\s*/, '')) : '';
}

/** A line of QEMU's or our own error text, short enough for one log line. */
function shortLine(s: string): string {
  return firstLine(s).slice(0, 300);
}
