// Stage states: the running machine saved after a build's stage, restored by a
// later build whose stages up to there are the same (docs/warm-start.md,
// "Stage states"). Same files and checks as a warm-start state (store.ts), in
// their own folder with a size cap; the key is the base machine's plus the
// build's part.
//
// The save freezes the disk layer the machine writes to (a new layer takes its
// writes), writes the memory state, resumes, and then, while the build goes on,
// turns a copy of the frozen layer into one overlay on the base image: QEMU's
// layers below it (a warm-start overlay, an earlier stage's) are folded in, so
// that a stage state depends on nothing but the base image.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { QmpClient } from './qmp.js';
import { snapshotRunning } from './save-restore.js';
import { OVERLAY_FILE, STAGE_STATES_FOLDER, StateStore, type FoundState, type StageExtra, type StateManifest } from './store.js';
import type { StateKey } from './key.js';

const execFileP = promisify(execFile);

/** Stage states beyond this many bytes: the least recently used go. */
export const STAGE_CAP_BYTES = 10 * 1024 ** 3;

export function stageStore(cacheDir: string): StateStore {
  return new StateStore(cacheDir, { folder: STAGE_STATES_FOLDER, capBytes: STAGE_CAP_BYTES });
}

/** The running machine as a stage save needs it. */
export interface StageMachine {
  qmpSocket: string;
  base: { path: string; format: 'qcow2' | 'raw' };
  /** The base machine's key. */
  key: StateKey;
  /**
   * A file with the very contents of the disk below the layer the machine now
   * writes to, whose own backing chain resolves by name (the base image, a
   * published warm or stage overlay, the overlay a restore booted).
   */
  below: string;
}

/** Looks up the candidates in order; the first that checks out, or why each missed. */
export async function findStageState(
  store: StateStore,
  machine: Pick<StageMachine, 'key' | 'base'>,
  candidates: { stage: string; key: string }[],
  scratchDir: string,
  maxAgeMs: number,
): Promise<{ found: FoundState; key: StateKey; stage: string } | { misses: string[] }> {
  const misses: string[] = [];
  for (const c of candidates) {
    const key = { ...machine.key, stage: c.key };
    const r = await store
      .lookup(key, machine.base, scratchDir, maxAgeMs)
      .catch((err: Error) => ({ found: undefined, reason: err.message }));
    if (r.found) return { found: r.found, key, stage: c.stage };
    misses.push(`${c.stage}: ${r.reason}`);
  }
  return { misses };
}

/**
 * Saves the running machine after a stage and lets it go on. Returns the new
 * `below` for the next save. Never throws.
 */
export async function saveStageState(
  m: StageMachine,
  store: StateStore,
  stageKey: string,
  extra: StageExtra,
  tempDir: string,
  signal?: AbortSignal,
): Promise<{ manifest: StateManifest; seconds: number; below: string } | { error: string; seconds: number }> {
  const t0 = Date.now();
  const key: StateKey = { ...m.key, stage: stageKey };
  let pending: Awaited<ReturnType<StateStore['beginSave']>> | undefined;
  try {
    pending = await store.beginSave(key, m.base);
    const layer = path.join(tempDir, `stage-run-${Date.now().toString(36)}.qcow2`);
    const { top } = await snapshotRunning(m.qmpSocket, (qmp) => diskTop(qmp, m.base.path), layer, pending.statePath, signal);
    // `top` is frozen now (QEMU only reads it): copy it and fold the layers below into the copy.
    const overlay = pending.overlayPath;
    await fs.rm(overlay, { force: true });
    await fs.copyFile(top, overlay);
    await fs.chmod(overlay, 0o644);
    const belowFormat = path.resolve(m.below) === path.resolve(m.base.path) ? m.base.format : 'qcow2';
    await execFileP('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', belowFormat, '-b', path.resolve(m.below), overlay]);
    await execFileP('qemu-img', ['rebase', '-f', 'qcow2', '-F', m.base.format, '-b', path.resolve(m.base.path), overlay]);
    const manifest = await pending.publish({ stage: extra });
    return {
      manifest,
      seconds: (Date.now() - t0) / 1000,
      below: path.join(store.keyDir(key), manifest.generation, OVERLAY_FILE),
    };
  } catch (err) {
    await pending?.abandon();
    return { error: (err as Error).message, seconds: (Date.now() - t0) / 1000 };
  }
}

interface BlockImage {
  filename?: string;
  'backing-image'?: BlockImage;
}

/**
 * The file behind a node's name: QEMU names a layer it made itself (snapshot=on)
 * `json:{..., "file": {"driver": "file", "filename": "/var/tmp/vl.XXXXXX"}}`.
 */
function fileOf(name: string | undefined): string | undefined {
  if (!name?.startsWith('json:')) return name;
  try {
    const spec = JSON.parse(name.slice(5)) as { file?: { filename?: string } };
    return spec.file?.filename;
  } catch {
    return undefined;
  }
}

/** The block device whose chain ends in the base image, and the file of its top layer. */
async function diskTop(qmp: QmpClient, basePath: string): Promise<{ device: string; top: string }> {
  const want = path.resolve(basePath);
  const blocks = await qmp.execute<{ device: string; inserted?: { file?: string; image?: BlockImage } }[]>('query-block');
  for (const b of blocks) {
    let img = b.inserted?.image;
    const top = fileOf(b.inserted?.image?.filename ?? b.inserted?.file);
    while (img) {
      if (img.filename && path.resolve(img.filename) === want && top) return { device: b.device, top };
      img = img['backing-image'];
    }
  }
  throw new Error('no disk of the machine is layered on the base image');
}
