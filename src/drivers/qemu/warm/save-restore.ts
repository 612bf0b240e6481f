// Warm starts for the qemu driver: boot an image once, save the running
// machine, and start later builds from that state instead of booting.
//
// The driver builds its QEMU command line as always and asks `planWarmStart`
// what to do with it:
//   restore  → launch `plan.args` (same machine + the kept overlay under
//              snapshot=on + -incoming), then `finishRestore` (load done,
//              state digest checked, `cont`), then connect, then `runFixups`.
//   save     → launch `plan.args` (the image under a fresh writable overlay),
//              wait until SSH answers with no session open, `saveAndContinue`
//              (stop, freeze the overlay, migrate to a file, resume), connect.
//   cold     → warm starts are off or impossible: launch `plan.args` as before.
// A restore that fails calls `restoreFailed` and boots with the plan it returns.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { dropOption, machineShape, pinMachine, swapDrive } from './args.js';
import { checkKey, imageDigest, knownImageDigest, pinnedMachine, qemuVersion, type StateKey } from './key.js';
import { QmpClient } from './qmp.js';
import { shellQuote } from '../../../core/shell.js';
import { StateStore, type FoundState, type PendingSave, type StateManifest } from './store.js';
import { message } from '../../../core/errors.js';

export { StateStore } from './store.js';
export { keyDigest } from './key.js';

const execFileP = promisify(execFile);

export type WarmMode = 'on' | 'off' | 'refresh';

/** Images up to this size are hashed before the boot (~1 s); larger new ones while it boots. */
const HASH_NOW_BYTES = 1 << 30;

export interface WarmRequest {
  mode: WarmMode;
  /** The CLI's image cache folder; states go to `<cacheDir>/warm`. */
  cacheDir: string;
  /** This build's temporary folder (QMP socket, the running disk layer). */
  tempDir: string;
  image: { path: string; format: 'qcow2' | 'raw'; sha256?: string };
  /** The driver's QEMU arguments for a plain cold boot (program name excluded). */
  args: string[];
  /**
   * A restored machine writes to a layer of ours in tempDir instead of QEMU's
   * hidden snapshot=on file, so that its disk can be saved again (stage states).
   */
  writableTop?: boolean;
  qemuBinary?: string;
}

/** How a plan changes the driver's launch: the disk to boot and the arguments to append. */
export interface LaunchChange {
  image: string;
  format: 'qcow2' | 'raw';
  snapshot: boolean;
  extraArgs: string[];
}

interface PlanBase {
  /** Arguments to launch, with `-qmp` on `qmpSocket` (the same as `launch` applied to the request's args). */
  args: string[];
  launch: LaunchChange;
  qmpSocket: string;
  /** One line for the log: why this plan. */
  note: string;
  key?: StateKey;
  store?: StateStore;
}
export interface RestorePlan extends PlanBase {
  kind: 'restore';
  key: StateKey;
  store: StateStore;
  found: FoundState;
}
export interface SavePlan extends PlanBase {
  kind: 'save';
  /** Unset while the image digest is still being computed (known from the manifest once published). */
  key?: StateKey;
  store: StateStore;
  pending: PendingSave;
}
export interface ColdPlan extends PlanBase {
  kind: 'cold';
}
export type WarmPlan = RestorePlan | SavePlan | ColdPlan;

/** Thrown when a saved state could not be brought up; the message is the one-line reason. */
export class WarmLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WarmLoadError';
  }
}

function qmpArgs(socket: string): string[] {
  return ['-qmp', `unix:${socket},server=on,wait=off`];
}

function withQmp(args: string[], socket: string): string[] {
  return [...dropOption(args, '-qmp'), ...qmpArgs(socket)];
}

/** The machine-type argument to append when the driver's command line has none. */
function machineArgs(args: string[], machine: string): string[] {
  return args.includes('-machine') || args.includes('-M') ? [] : ['-machine', machine];
}

/** Applies a plan's launch change to a launch description shaped like the qemu driver's LaunchSpec. */
export function applyLaunchChange<T extends { image: string; format: 'qcow2' | 'raw'; snapshot?: boolean; extraArgs?: string[] }>(
  spec: T,
  change: LaunchChange,
): T {
  return {
    ...spec,
    image: change.image,
    format: change.format,
    snapshot: change.snapshot,
    extraArgs: [...(spec.extraArgs ?? []), ...change.extraArgs],
  };
}

/** Decides between restore, cold boot + save, and plain cold boot, and prepares the files. */
export async function planWarmStart(req: WarmRequest): Promise<WarmPlan> {
  const qmpSocket = path.join(req.tempDir, 'warm-qmp.sock');
  const cold = (note: string): ColdPlan => ({
    kind: 'cold',
    args: withQmp(req.args, qmpSocket),
    launch: { image: req.image.path, format: req.image.format, snapshot: true, extraArgs: qmpArgs(qmpSocket) },
    qmpSocket,
    note,
  });
  const impossible = whyNoWarmStart(req);
  if (impossible) return cold(impossible);

  const store = new StateStore(req.cacheDir);
  let key: StateKey;
  let args: string[];
  let digestLater: { promise: Promise<string>; abort: AbortController } | undefined;
  try {
    const binary = req.qemuBinary ?? 'qemu-system-x86_64';
    const [machine, version, known, size] = await Promise.all([
      pinnedMachine('pc', binary),
      qemuVersion(binary),
      req.image.sha256 ?? knownImageDigest(req.image.path, store.root),
      fs.stat(req.image.path).then((st) => st.size),
    ]);
    let imageSha256 = known;
    if (!imageSha256 && size <= HASH_NOW_BYTES) imageSha256 = await imageDigest(req.image.path, store.root);
    args = pinMachine(req.args, machine);
    if (!imageSha256) {
      // A large image seen for the first time: hash it while it boots (a state for it cannot exist yet here).
      const abort = new AbortController();
      const promise = imageDigest(req.image.path, store.root, abort.signal);
      promise.catch(() => undefined);
      digestLater = { promise, abort };
    }
    key = { imageSha256: imageSha256 ?? '0'.repeat(64), qemuVersion: version, ...machineShape(args) };
    checkKey(key);
  } catch (err) {
    return cold(`warm start off: ${(err as Error).message}`);
  }

  const base = { path: req.image.path, format: req.image.format };
  if (digestLater) {
    const shape = key;
    const keyPromise = digestLater.promise.then((imageSha256) => ({ ...shape, imageSha256 }));
    return planSave(store, keyPromise, shape.machine, base, req.args, qmpSocket, 'no saved state for this new image', () =>
      digestLater.abort.abort(),
    );
  }
  let why: string;
  if (req.mode === 'refresh') {
    why = 'refresh asked for';
    await store.forget(key);
  } else {
    const r = await store.lookup(key, base, req.tempDir).catch((err: Error) => ({ found: undefined, reason: err.message }));
    if (r.found) return await restorePlan(req, key, store, r.found);
    why = r.reason;
  }
  return planSave(store, key, key.machine, base, req.args, qmpSocket, why);
}

/** Why this request cannot start warm (mode or command line), or undefined. */
function whyNoWarmStart(req: WarmRequest): string | undefined {
  if (req.mode === 'off') return 'warm start off';
  if (req.args.includes('-snapshot') || req.args.includes('-loadvm')) return 'warm start not possible with -snapshot/-loadvm';
  if (req.args.includes('-incoming')) return 'warm start not possible: the command line already has -incoming';
  return undefined;
}

/** The plan that launches QEMU on a found state (a warm-start state or a stage state) and loads it. */
export async function restorePlan(req: WarmRequest, key: StateKey, store: StateStore, found: FoundState): Promise<RestorePlan> {
  const qmpSocket = path.join(req.tempDir, 'warm-qmp.sock');
  const args = pinMachine(req.args, key.machine);
  const incoming = ['-incoming', `exec:cat ${shellQuote(found.statePath)}`];
  let disk = found.overlayPath;
  if (req.writableTop) {
    disk = path.join(req.tempDir, `run-${Date.now().toString(36)}.qcow2`);
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', path.resolve(found.overlayPath), disk]);
  }
  const snapshot = !req.writableTop;
  const restoreArgs = [...swapDrive(withQmp(args, qmpSocket), req.image.path, disk, snapshot), ...incoming];
  const launch = {
    image: disk,
    format: 'qcow2' as const,
    snapshot,
    extraArgs: [...machineArgs(req.args, key.machine), ...qmpArgs(qmpSocket), ...incoming],
  };
  const what = found.manifest.stage ? `the state saved after stage ${found.manifest.stage.name}` : 'saved state';
  return {
    kind: 'restore',
    args: restoreArgs,
    launch,
    qmpSocket,
    note: `restoring ${what} ${found.manifest.keyDigest.slice(0, 12)}`,
    key,
    store,
    found,
  };
}

/**
 * The key of the base machine when everything it needs is known without
 * hashing the image now (its digest given or remembered); else undefined.
 */
export async function knownStateKey(req: WarmRequest): Promise<StateKey | undefined> {
  if (whyNoWarmStart(req)) return undefined;
  try {
    const binary = req.qemuBinary ?? 'qemu-system-x86_64';
    const root = new StateStore(req.cacheDir).root;
    const [machine, version, known] = await Promise.all([
      pinnedMachine('pc', binary),
      qemuVersion(binary),
      req.image.sha256 ?? knownImageDigest(req.image.path, root),
    ]);
    if (!known) return undefined;
    const key = { imageSha256: known, qemuVersion: version, ...machineShape(pinMachine(req.args, machine)) };
    checkKey(key);
    return key;
  } catch {
    return undefined;
  }
}

async function planSave(
  store: StateStore,
  key: StateKey | Promise<StateKey>,
  machine: string,
  base: { path: string; format: 'qcow2' | 'raw' },
  reqArgs: string[],
  qmpSocket: string,
  why: string,
  onAbandon?: () => void,
): Promise<WarmPlan> {
  const args = pinMachine(reqArgs, machine);
  try {
    const pending = await store.beginSave(key, base, onAbandon);
    const saveArgs = swapDrive(withQmp(args, qmpSocket), base.path, pending.overlayPath, false);
    const launch = {
      image: pending.overlayPath,
      format: 'qcow2' as const,
      snapshot: false,
      extraArgs: [...machineArgs(reqArgs, machine), ...qmpArgs(qmpSocket)],
    };
    const known = key instanceof Promise ? undefined : key;
    return {
      kind: 'save',
      args: saveArgs,
      launch,
      qmpSocket,
      note: `booting cold (${why}); the booted machine will be saved`,
      key: known,
      store,
      pending,
    };
  } catch (err) {
    onAbandon?.();
    const launch = { image: base.path, format: base.format, snapshot: true, extraArgs: qmpArgs(qmpSocket) };
    return {
      kind: 'cold',
      args: withQmp(reqArgs, qmpSocket),
      launch,
      qmpSocket,
      note: `booting cold; cannot prepare a state: ${(err as Error).message}`,
    };
  }
}

/**
 * After a restore failed (the reason goes to the log in one line): forgets
 * that state and returns the plan for a cold boot that saves a fresh one.
 */
export async function restoreFailed(plan: RestorePlan, req: WarmRequest, reason: string): Promise<WarmPlan> {
  await plan.store.forget(plan.key, plan.found.manifest.generation);
  await fs.rm(plan.qmpSocket, { force: true });
  await fs.rm(path.join(req.tempDir, `warm-${plan.found.manifest.generation}.qcow2`), { force: true });
  return planSave(
    plan.store,
    plan.key,
    plan.key.machine,
    { path: req.image.path, format: req.image.format },
    req.args,
    plan.qmpSocket,
    `restore failed: ${reason}`,
  );
}

/**
 * Waits until QEMU has loaded the state, checks the state file's digest and
 * resumes the machine. Only after this may anything connect to its ports.
 */
export async function finishRestore(
  plan: RestorePlan,
  opts: { timeoutMs?: number; alive?: () => boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(plan.qmpSocket, { timeoutMs, alive: opts.alive, signal: opts.signal });
    const status = await qmp.waitIncomingDone(timeoutMs, opts.signal);
    await plan.found.verifyState;
    if (status !== 'running') await qmp.cont();
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new WarmLoadError(message(err));
  } finally {
    qmp?.close();
  }
}

/**
 * Saves the running, idle machine (no SSH session open) and lets it go on:
 * stop; move its disk writes to a new layer in tempDir so the overlay stays
 * exactly as saved; write the state; resume; publish overlay + state together.
 * Never throws: a failed save is reported and the build goes on.
 */
export async function saveAndContinue(
  plan: SavePlan,
  opts: { tempDir: string; bootSeconds?: number; signal?: AbortSignal },
): Promise<{ manifest?: StateManifest; seconds: number; error?: string }> {
  const t0 = Date.now();
  try {
    const layer = path.join(opts.tempDir, `warm-run-${Date.now().toString(36)}.qcow2`);
    await snapshotRunning(
      plan.qmpSocket,
      async (qmp) => ({ device: await overlayDevice(qmp, plan.pending.overlayPath) }),
      layer,
      plan.pending.statePath,
      opts.signal,
    );
    const manifest = await plan.pending.publish({ bootSeconds: opts.bootSeconds });
    return { manifest, seconds: (Date.now() - t0) / 1000 };
  } catch (err) {
    await plan.pending.abandon();
    return { seconds: (Date.now() - t0) / 1000, error: (err as Error).message };
  }
}

/**
 * Saves a running machine the warm-start way: pauses it, moves its disk writes to a new `layer` (the
 * disk `locate` names is frozen from then on), writes its memory state to `statePath` and resumes it.
 * A failure resumes the machine too, then throws. Returns what `locate` found.
 */
export async function snapshotRunning<T extends { device: string }>(
  qmpSocket: string,
  locate: (qmp: QmpClient) => Promise<T>,
  layer: string,
  statePath: string,
  signal?: AbortSignal,
): Promise<T> {
  let qmp: QmpClient | undefined;
  let stopped = false;
  try {
    qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 10_000, signal });
    await qmp.stop();
    stopped = true;
    const found = await locate(qmp);
    await qmp.execute('blockdev-snapshot-sync', { device: found.device, 'snapshot-file': layer, format: 'qcow2' });
    await qmp.migrateToFile(statePath);
    await qmp.waitMigrationDone(120_000, signal);
    await qmp.cont();
    stopped = false;
    return found;
  } catch (err) {
    if (stopped && qmp) await qmp.cont().catch(() => undefined);
    throw err;
  } finally {
    qmp?.close();
  }
}

/** The block device whose top image is exactly `overlay` (no temporary layer above it). */
async function overlayDevice(qmp: QmpClient, overlay: string): Promise<string> {
  const blocks = await qmp.execute<{ device: string; inserted?: { file?: string } }[]>('query-block');
  const hit = blocks.find((b) => b.inserted?.file && path.resolve(b.inserted.file) === path.resolve(overlay));
  if (!hit) throw new Error('the overlay to save is not the disk the machine writes to');
  return hit.device;
}
